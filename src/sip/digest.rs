//! HTTP Digest authentication as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760): parsing a
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge, choosing one, and computing the
//! `Authorization` / `Proxy-Authorization` answer. MD5 and SHA-256 (and their `-sess` forms),
//! `qop=auth` (and `auth-int` over the empty body a REGISTER has), `nc` as 8 hex digits.
//!
//! Pure: the cnonce and the nonce count are arguments, so the RFC 7616 §3.9.1 examples are
//! reproduced exactly in the tests. Why not the `digest_auth` crate: it would bring `rand` 0.8 as
//! a second copy, its context type prints the password with `{:?}`, and the challenge choice
//! (first supported of several headers, realm matching) is SIP's, not HTTP's, anyway.
//!
//! The password is held in a [`Secret`], which never prints; no error here carries it.

use std::fmt;

use md5::Digest as _;

/// A password. `Debug` prints `<redacted>` and there is no `Display`, so it cannot reach a log
/// line, an error or `validate` output by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The password itself, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Digest algorithms we can answer (RFC 7616 §3.3, RFC 8760 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5`, also the default when a challenge names none.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The token as sent in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn parse(token: &str) -> Option<Algorithm> {
        // Algorithm tokens are case-insensitive in practice (RFC 7616 §3.3 lists them upper case).
        match token.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lowercase hex of the hash of `data`.
    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()).as_ref())
            }
        }
    }
}

/// Quality of protection chosen for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// The challenge offered none (RFC 2069 style): no cnonce, no nc.
    None,
    /// `auth`.
    Auth,
    /// `auth-int`, over the empty body.
    AuthInt,
}

/// One parsed digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// The qop we will use: `auth` when offered, else `auth-int`, else none.
    pub qop: Qop,
    /// `stale=true`: the nonce expired but the credentials were right; answer the new nonce.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not a `Digest` challenge (e.g. `Basic`, which SIP forbids).
    #[error("not a digest challenge: scheme {0:?}")]
    NotDigest(String),
    /// A required parameter is missing.
    #[error("digest challenge without {0}")]
    Missing(&'static str),
    /// An algorithm we do not implement (e.g. SHA-512-256).
    #[error("unsupported digest algorithm {0:?}")]
    Algorithm(String),
    /// A qop list with neither `auth` nor `auth-int`.
    #[error("unsupported qop {0:?}")]
    Qop(String),
    /// Parameters that do not parse (unclosed quote, missing `=`).
    #[error("malformed digest challenge")]
    Malformed,
}

/// Parses one `WWW-Authenticate` or `Proxy-Authenticate` value.
pub fn parse_challenge(value: &str) -> Result<Challenge, ChallengeError> {
    let value = value.trim();
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(at) => (&value[..at], &value[at..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(ChallengeError::NotDigest(
            scheme.chars().take(32).collect::<String>(),
        ));
    }
    let params = parse_params(rest).ok_or(ChallengeError::Malformed)?;
    // Values are echoed into our answer: a control character (a line break above all) would
    // let a peer inject header lines.
    if params
        .iter()
        .any(|(n, v)| n.chars().chain(v.chars()).any(char::is_control))
    {
        return Err(ChallengeError::Malformed);
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
    let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
    let algorithm = match get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(a.trim())
            .ok_or_else(|| ChallengeError::Algorithm(a.chars().take(32).collect::<String>()))?,
    };
    let qop = match get("qop") {
        None => Qop::None,
        Some(list) => {
            let offered: Vec<String> = list
                .split(',')
                .map(|q| q.trim().to_ascii_lowercase())
                .collect();
            if offered.iter().any(|q| q == "auth") {
                Qop::Auth
            } else if offered.iter().any(|q| q == "auth-int") {
                Qop::AuthInt
            } else {
                return Err(ChallengeError::Qop(list.chars().take(32).collect()));
            }
        }
    };
    let stale = get("stale").is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
    Ok(Challenge {
        realm,
        nonce,
        opaque: get("opaque"),
        algorithm,
        qop,
        stale,
    })
}

/// Chooses the challenge to answer from all the values of a 401/407: the first one we can answer
/// (RFC 8760 §2.4: a server lists its preferred algorithm first) whose realm is `realm` when one
/// is configured. Errors with the reason the first value was refused when none fits.
pub fn choose(values: &[String], realm: Option<&str>) -> Result<Challenge, ChallengeError> {
    let mut first_error = None;
    for value in values {
        match parse_challenge(value) {
            Ok(c) if realm.is_none_or(|r| r == c.realm) => return Ok(c),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ChallengeError::Missing(
        "a challenge for the configured realm",
    )))
}

/// The inputs of one answer besides the challenge.
#[derive(Debug, Clone, Copy)]
pub struct AnswerInput<'a> {
    /// Username.
    pub username: &'a str,
    /// Password.
    pub password: &'a Secret,
    /// Request method (`REGISTER`).
    pub method: &'a str,
    /// The Request-URI, exactly as in the request line (the `uri` parameter).
    pub uri: &'a str,
    /// Client nonce (fresh per answer; used only with qop or `-sess`).
    pub cnonce: &'a str,
    /// Nonce count: how many answers this nonce has had, this one included (1 for the first).
    pub nc: u32,
}

/// Computes the `response` value (RFC 7616 §3.4.1).
pub fn response(ch: &Challenge, input: &AnswerInput<'_>) -> String {
    let alg = ch.algorithm;
    let mut ha1 = alg.hash(&format!(
        "{}:{}:{}",
        input.username,
        ch.realm,
        input.password.expose()
    ));
    if alg.sess() {
        ha1 = alg.hash(&format!("{ha1}:{}:{}", ch.nonce, input.cnonce));
    }
    let ha2 = match ch.qop {
        Qop::AuthInt => alg.hash(&format!("{}:{}:{}", input.method, input.uri, alg.hash(""))),
        Qop::Auth | Qop::None => alg.hash(&format!("{}:{}", input.method, input.uri)),
    };
    match ch.qop {
        Qop::None => alg.hash(&format!("{ha1}:{}:{ha2}", ch.nonce)),
        Qop::Auth | Qop::AuthInt => alg.hash(&format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            ch.nonce,
            input.nc,
            input.cnonce,
            qop_token(ch.qop)
        )),
    }
}

/// The full `Authorization` / `Proxy-Authorization` value answering `ch`.
pub fn authorization(ch: &Challenge, input: &AnswerInput<'_>) -> String {
    let resp = response(ch, input);
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{resp}\", algorithm={}",
        quote(input.username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(input.uri),
        ch.algorithm.as_str()
    );
    if ch.qop != Qop::None || ch.algorithm.sess() {
        out.push_str(&format!(", cnonce=\"{}\"", quote(input.cnonce)));
    }
    if let Some(opaque) = &ch.opaque {
        out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    if ch.qop != Qop::None {
        out.push_str(&format!(", qop={}, nc={:08x}", qop_token(ch.qop), input.nc));
    }
    out
}

/// A received `Authorization`/`Proxy-Authorization` answer, read for checking: what a server
/// (the test peers, the fuzz targets) needs to recompute the response it must carry.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Vec<(String, String)>);

impl Credentials {
    /// The answer's parameters; none when it is not a Digest answer.
    pub fn parse(value: &str) -> Self {
        Credentials(digest_params(value).unwrap_or_default())
    }

    /// A parameter by name (case-insensitive), empty when absent.
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The response a client knowing `password` must have sent to `challenge` for `method`,
    /// over the `uri`, `cnonce` and `nc` this answer names.
    pub fn expected(
        &self,
        challenge: &Challenge,
        username: &str,
        password: &Secret,
        method: &str,
    ) -> String {
        response(
            challenge,
            &AnswerInput {
                username,
                password,
                method,
                uri: &self.get("uri"),
                cnonce: &self.get("cnonce"),
                nc: u32::from_str_radix(&self.get("nc"), 16).unwrap_or(0),
            },
        )
    }
}

/// The parameters of a `Digest …` credentials or challenge value (names as written, values
/// unquoted), for peers that check an answer (the test registrar). `None` when it is not Digest
/// or does not parse.
pub fn digest_params(value: &str) -> Option<Vec<(String, String)>> {
    let value = value.trim();
    let at = value.find(|c: char| c.is_ascii_whitespace())?;
    if !value[..at].eq_ignore_ascii_case("digest") {
        return None;
    }
    parse_params(&value[at..])
}

/// Parses an `algorithm=` token.
pub fn algorithm(token: &str) -> Option<Algorithm> {
    Algorithm::parse(token)
}

fn qop_token(q: Qop) -> &'static str {
    match q {
        Qop::AuthInt => "auth-int",
        Qop::Auth | Qop::None => "auth",
    }
}

/// Escapes `"` and `\` for a quoted-string and drops control characters, so the answer is
/// always one header line.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings with `\` escapes.
/// `None` when the list does not parse.
fn parse_params(input: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || name.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(algorithm: &str) -> Challenge {
        parse_challenge(&format!(
            "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n \
             algorithm={algorithm},\r\n nonce=\"{RFC7616_NONCE}\",\r\n opaque=\"{RFC7616_OPAQUE}\""
        ))
        .unwrap()
    }

    fn mufasa<'a>(password: &'a Secret, uri: &'a str, cnonce: &'a str) -> AnswerInput<'a> {
        AnswerInput {
            username: "Mufasa",
            password,
            method: "GET",
            uri,
            cnonce,
            nc: 1,
        }
    }

    /// RFC 7616 §3.9.1, both examples, exactly.
    #[test]
    fn rfc7616_examples() {
        let pw = Secret::new("Circle of Life");
        let input = mufasa(&pw, "/dir/index.html", RFC7616_CNONCE);
        let md5 = rfc7616("MD5");
        assert_eq!(md5.qop, Qop::Auth);
        assert_eq!(md5.opaque.as_deref(), Some(RFC7616_OPAQUE));
        assert_eq!(response(&md5, &input), "8ca523f5e9506fed4657c9700eebdbec");
        let sha = rfc7616("SHA-256");
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        assert_eq!(
            response(&sha, &input),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let header = authorization(&sha, &input);
        assert!(header.starts_with("Digest username=\"Mufasa\", realm=\"http-auth@example.org\""));
        for part in [
            "uri=\"/dir/index.html\"",
            "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"",
            "algorithm=SHA-256",
            "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\"",
            "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
            "qop=auth",
            "nc=00000001",
        ] {
            assert!(header.contains(part), "{part} in {header}");
        }
    }

    /// RFC 2617 §3.5 (MD5, qop=auth).
    #[test]
    fn rfc2617_example() {
        let ch = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let pw = Secret::new("Circle Of Life");
        let input = mufasa(&pw, "/dir/index.html", "0a4f113b");
        assert_eq!(response(&ch, &input), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn nonce_count_is_eight_hex_digits() {
        let pw = Secret::new("Circle of Life");
        let mut input = mufasa(&pw, "/dir/index.html", RFC7616_CNONCE);
        input.nc = 10;
        let ch = rfc7616("MD5");
        let header = authorization(&ch, &input);
        assert!(header.contains("nc=0000000a"), "{header}");
        // nc enters the hash: nc=10 must differ from nc=1.
        assert_ne!(response(&ch, &input), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn no_qop_and_sess_forms() {
        // RFC 2069 style: H(HA1:nonce:HA2), no cnonce or nc in the header.
        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\"").unwrap();
        assert_eq!((ch.algorithm, ch.qop), (Algorithm::Md5, Qop::None));
        let pw = Secret::new("p");
        let input = AnswerInput {
            username: "u",
            password: &pw,
            method: "REGISTER",
            uri: "sip:example.net",
            cnonce: "c",
            nc: 1,
        };
        let ha1 = Algorithm::Md5.hash("u:r:p");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:example.net");
        assert_eq!(
            response(&ch, &input),
            Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"))
        );
        let header = authorization(&ch, &input);
        assert!(
            !header.contains("nc=") && !header.contains("cnonce"),
            "{header}"
        );

        let ch =
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256-sess, qop=auth")
                .unwrap();
        let ha1 = Algorithm::Sha256.hash(&format!("{}:n:c", Algorithm::Sha256.hash("u:r:p")));
        let ha2 = Algorithm::Sha256.hash("REGISTER:sip:example.net");
        assert_eq!(
            response(&ch, &input),
            Algorithm::Sha256.hash(&format!("{ha1}:n:00000001:c:auth:{ha2}"))
        );
    }

    #[test]
    fn challenges_parse_tolerantly_and_refuse_what_we_cannot_answer() {
        let ch = parse_challenge(
            "DIGEST realm = \"a \\\"b\\\"\" ,nonce=abc,stale=TRUE,algorithm=md5,qop=\"auth-int\"",
        )
        .unwrap();
        assert_eq!(ch.realm, "a \"b\"");
        assert_eq!(ch.nonce, "abc");
        assert!(ch.stale);
        assert_eq!((ch.algorithm, ch.qop), (Algorithm::Md5, Qop::AuthInt));
        for (value, want) in [
            (
                "Basic realm=\"x\"",
                ChallengeError::NotDigest("Basic".into()),
            ),
            ("Digest nonce=\"n\"", ChallengeError::Missing("realm")),
            ("Digest realm=\"r\"", ChallengeError::Missing("nonce")),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
                ChallengeError::Algorithm("SHA-512-256".into()),
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", qop=\"other\"",
                ChallengeError::Qop("other".into()),
            ),
            ("Digest realm=\"r, nonce=n", ChallengeError::Malformed),
            ("Digest realm", ChallengeError::Malformed),
            (
                "Digest realm=\"a\r\nVia: x\", nonce=\"n\"",
                ChallengeError::Malformed,
            ),
        ] {
            assert_eq!(parse_challenge(value), Err(want), "{value}");
        }
    }

    #[test]
    fn choose_takes_the_first_supported_for_the_realm() {
        let values = vec![
            "Digest realm=\"r\", nonce=\"1\", algorithm=SHA-512-256".to_string(),
            "Digest realm=\"other\", nonce=\"2\", algorithm=SHA-256".to_string(),
            "Digest realm=\"r\", nonce=\"3\", algorithm=MD5".to_string(),
        ];
        assert_eq!(choose(&values, None).unwrap().nonce, "2");
        assert_eq!(choose(&values, Some("r")).unwrap().nonce, "3");
        assert_eq!(
            choose(&values[..1], None),
            Err(ChallengeError::Algorithm("SHA-512-256".into()))
        );
        assert!(choose(&values[1..2], Some("r")).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
