//! Probe target URIs: `sip:`/`sips:` `[user@]host[:port][;transport=…]`, IPv6 in brackets, and
//! the RFC 3263 transport choice short of NAPTR/SRV. One parser for config validation (which
//! reports its errors with file and line) and the prober (including the one-shot command), so a
//! target means the same everywhere. Pure: resolving a name is `probe::uri::resolve`'s job.
//!
//! Strict on purpose: a parameter other than `transport` is refused, because a typo such as
//! `;transprt=tcp` would otherwise silently probe over UDP.

use std::fmt;
use std::net::IpAddr;

use super::SipTransport;

/// Default port for UDP and TCP (RFC 3261 §18.1.1).
pub const DEFAULT_PORT: u16 = 5060;
/// Default port for TLS (RFC 3261 §18.1.1).
pub const DEFAULT_TLS_PORT: u16 = 5061;

/// URI scheme of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`.
    Sip,
    /// `sips:` (TLS required end to end).
    Sips,
}

/// The host part, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A numeric IPv4 or IPv6 address (IPv6 was written in brackets).
    Ip(IpAddr),
    /// A DNS name, lowercased.
    Name(String),
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            TargetHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            TargetHost::Name(name) => f.write_str(name),
        }
    }
}

/// A parsed probe target, so that a typo in `probes.sip[].target` is an error at load time rather
/// than a probe that silently never answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// The user part, when one was given (kept in the Request-URI).
    pub user: Option<String>,
    /// Host.
    pub host: TargetHost,
    /// Port as written; [`TargetUri::port`] applies the default.
    pub port: Option<u16>,
    /// Transport: the `transport=` parameter, else UDP for `sip:` and TLS for `sips:`.
    pub transport: SipTransport,
}

/// Why a target URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not `sip:` or `sips:`.
    #[error(
        "expected a sip: or sips: uri like \"sip:pbx.example.com:5060;transport=udp\", got {0:?}"
    )]
    Scheme(String),
    /// Nothing after the scheme (or after `user@`).
    #[error("missing host in {0:?}")]
    MissingHost(String),
    /// `[` without a valid IPv6 address and `]`.
    #[error("invalid ipv6 reference in {0:?} (expected \"[2001:db8::1]\")")]
    BadIpv6(String),
    /// An unbracketed IPv6 address or a stray colon.
    #[error("invalid host in {0:?} (ipv6 addresses go in brackets: \"sip:[::1]:5060\")")]
    BadHost(String),
    /// A port that is not 1..=65535.
    #[error("port must be 1 to 65535 in {0:?}")]
    BadPort(String),
    /// A transport other than udp, tcp or tls.
    #[error("transport must be udp, tcp or tls, got {transport:?} in {uri:?}")]
    Transport {
        /// The transport as written.
        transport: String,
        /// The URI.
        uri: String,
    },
    /// `sips:` with `transport=udp`.
    #[error("a sips: uri needs TLS; transport=udp is not possible in {0:?}")]
    SipsOverUdp(String),
    /// A URI parameter other than `transport`, or `transport` twice.
    #[error(
        "unsupported uri parameter {param:?} in {uri:?}; only one transport=udp|tcp|tls is understood"
    )]
    Param {
        /// The parameter as written.
        param: String,
        /// The URI.
        uri: String,
    },
    /// `@` with nothing before it.
    #[error("empty user part before \"@\" in {0:?}")]
    EmptyUser(String),
    /// `?headers` in a target.
    #[error("uri headers (\"?...\") are not supported in a probe target: {0:?}")]
    Headers(String),
}

impl TargetUri {
    /// Parses `sip:host[:port][;transport=udp|tcp|tls]` (and `sips:`), with IPv6 in brackets.
    pub fn parse(input: &str) -> Result<TargetUri, UriError> {
        let raw = input.trim();
        let (scheme, rest) = split_scheme(raw).ok_or_else(|| UriError::Scheme(raw.into()))?;
        if rest.contains('?') {
            return Err(UriError::Headers(raw.into()));
        }
        let (addr, params) = match rest.find(';') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let (user, hostport) = match addr.rfind('@') {
            Some(0) => return Err(UriError::EmptyUser(raw.into())),
            Some(at) => (Some(&addr[..at]), &addr[at + 1..]),
            None => (None, addr),
        };
        if hostport.is_empty() {
            return Err(UriError::MissingHost(raw.into()));
        }
        let (host, port) = parse_hostport(hostport, raw)?;

        let mut transport = match scheme {
            Scheme::Sip => SipTransport::Udp,
            Scheme::Sips => SipTransport::Tls,
        };
        let mut seen_transport = false;
        for param in params.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = match param.find('=') {
                Some(at) => (&param[..at], &param[at + 1..]),
                None => (param, ""),
            };
            if !name.trim().eq_ignore_ascii_case("transport") || seen_transport {
                return Err(UriError::Param {
                    param: param.into(),
                    uri: raw.into(),
                });
            }
            seen_transport = true;
            let value = value.trim().to_ascii_lowercase();
            transport = match (value.as_str(), scheme) {
                ("udp", Scheme::Sip) => SipTransport::Udp,
                ("udp", Scheme::Sips) => return Err(UriError::SipsOverUdp(raw.into())),
                // RFC 5630 §3.1.3: `sips:…;transport=tcp` means TLS over TCP.
                ("tcp", Scheme::Sips) => SipTransport::Tls,
                ("tcp", Scheme::Sip) => SipTransport::Tcp,
                ("tls", _) => SipTransport::Tls,
                _ => {
                    return Err(UriError::Transport {
                        transport: value,
                        uri: raw.into(),
                    });
                }
            };
        }
        Ok(TargetUri {
            scheme,
            user: user.map(str::to_string),
            host,
            port,
            transport,
        })
    }

    /// The port to connect to: as written, else 5060, or 5061 for TLS.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.transport {
            SipTransport::Tls => DEFAULT_TLS_PORT,
            SipTransport::Udp | SipTransport::Tcp => DEFAULT_PORT,
        })
    }

    /// The default Request-URI and To URI: the target without its parameters.
    pub fn request_uri(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        match self.port {
            Some(port) => format!("{scheme}:{user}{}:{port}", self.host),
            None => format!("{scheme}:{user}{}", self.host),
        }
    }

    /// The name a TLS certificate is checked against by default: the host without brackets.
    pub fn server_name(&self) -> String {
        match &self.host {
            TargetHost::Ip(ip) => ip.to_string(),
            TargetHost::Name(name) => name.clone(),
        }
    }
}

impl fmt::Display for TargetUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};transport={}",
            self.request_uri(),
            self.transport.as_str()
        )
    }
}

fn split_scheme(raw: &str) -> Option<(Scheme, &str)> {
    let colon = raw.find(':')?;
    let scheme = &raw[..colon];
    let rest = &raw[colon + 1..];
    if scheme.eq_ignore_ascii_case("sip") {
        Some((Scheme::Sip, rest))
    } else if scheme.eq_ignore_ascii_case("sips") {
        Some((Scheme::Sips, rest))
    } else {
        None
    }
}

fn parse_hostport(hostport: &str, raw: &str) -> Result<(TargetHost, Option<u16>), UriError> {
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| UriError::BadIpv6(raw.into()))?;
        let ip: std::net::Ipv6Addr = inner[..close]
            .parse()
            .map_err(|_| UriError::BadIpv6(raw.into()))?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UriError::BadHost(raw.into()))?,
            ),
        };
        (TargetHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match hostport.find(':') {
            Some(at) => (&hostport[..at], Some(&hostport[at + 1..])),
            None => (hostport, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(UriError::BadHost(raw.into()));
        }
        if host.is_empty() {
            return Err(UriError::MissingHost(raw.into()));
        }
        let host = match host.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => TargetHost::Ip(IpAddr::V4(ip)),
            Err(_) => {
                // Labels of 1–63 characters, 253 in all; one trailing dot (a rooted name) is fine.
                let name = host.strip_suffix('.').unwrap_or(host);
                let valid = name.len() <= 253 && name.split('.').all(valid_label);
                if !valid {
                    return Err(UriError::BadHost(raw.into()));
                }
                TargetHost::Name(host.to_ascii_lowercase())
            }
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(UriError::BadPort(raw.into())),
        },
    };
    Ok((host, port))
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    #[allow(clippy::type_complexity)]
    fn parses_the_usual_shapes() {
        let cases: &[(&str, Scheme, TargetHost, Option<u16>, SipTransport, u16)] = &[
            (
                "sip:pbx1.example.net",
                Scheme::Sip,
                TargetHost::Name("pbx1.example.net".into()),
                None,
                SipTransport::Udp,
                5060,
            ),
            (
                "sip:192.0.2.10:5080",
                Scheme::Sip,
                TargetHost::Ip(Ipv4Addr::new(192, 0, 2, 10).into()),
                Some(5080),
                SipTransport::Udp,
                5080,
            ),
            (
                "SIP:PBX.Example.NET;transport=TCP",
                Scheme::Sip,
                TargetHost::Name("pbx.example.net".into()),
                None,
                SipTransport::Tcp,
                5060,
            ),
            (
                "sip:sbc.example.net;transport=tls",
                Scheme::Sip,
                TargetHost::Name("sbc.example.net".into()),
                None,
                SipTransport::Tls,
                5061,
            ),
            (
                "sips:sbc.example.net",
                Scheme::Sips,
                TargetHost::Name("sbc.example.net".into()),
                None,
                SipTransport::Tls,
                5061,
            ),
            (
                "sips:sbc.example.net:5071;transport=tcp",
                Scheme::Sips,
                TargetHost::Name("sbc.example.net".into()),
                Some(5071),
                SipTransport::Tls,
                5071,
            ),
            (
                "sip:[2001:db8::10]:5062;transport=udp",
                Scheme::Sip,
                TargetHost::Ip(IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap())),
                Some(5062),
                SipTransport::Udp,
                5062,
            ),
            (
                "sip:[::1]",
                Scheme::Sip,
                TargetHost::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                None,
                SipTransport::Udp,
                5060,
            ),
        ];
        for (input, scheme, host, port, transport, effective) in cases {
            let uri = TargetUri::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(uri.scheme, *scheme, "{input}");
            assert_eq!(&uri.host, host, "{input}");
            assert_eq!(uri.port, *port, "{input}");
            assert_eq!(uri.transport, *transport, "{input}");
            assert_eq!(uri.port(), *effective, "{input}");
        }
    }

    #[test]
    fn request_uri_drops_params_and_keeps_user_and_brackets() {
        let uri = TargetUri::parse("sip:ping@[2001:db8::10]:5062;transport=tcp").unwrap();
        assert_eq!(uri.user.as_deref(), Some("ping"));
        assert_eq!(uri.request_uri(), "sip:ping@[2001:db8::10]:5062");
        assert_eq!(uri.server_name(), "2001:db8::10");
        let uri = TargetUri::parse("sips:sbc.example.net").unwrap();
        assert_eq!(uri.request_uri(), "sips:sbc.example.net");
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn refuses_bad_targets_with_a_reason() {
        let cases: &[(&str, fn(&UriError) -> bool)] = &[
            ("http://x", |e| matches!(e, UriError::Scheme(_))),
            ("pbx.example.net", |e| matches!(e, UriError::Scheme(_))),
            ("sip:", |e| matches!(e, UriError::MissingHost(_))),
            ("sip:user@", |e| matches!(e, UriError::MissingHost(_))),
            ("sip:2001:db8::1", |e| matches!(e, UriError::BadHost(_))),
            ("sip:[2001:db8::zz]", |e| matches!(e, UriError::BadIpv6(_))),
            ("sip:[::1", |e| matches!(e, UriError::BadIpv6(_))),
            ("sip:[::1]5060", |e| matches!(e, UriError::BadHost(_))),
            ("sip:host:0", |e| matches!(e, UriError::BadPort(_))),
            ("sip:host:70000", |e| matches!(e, UriError::BadPort(_))),
            ("sip:host:", |e| matches!(e, UriError::BadPort(_))),
            ("sip:host;transport=sctp", |e| {
                matches!(e, UriError::Transport { .. })
            }),
            ("sips:host;transport=udp", |e| {
                matches!(e, UriError::SipsOverUdp(_))
            }),
            ("sip:host?subject=x", |e| matches!(e, UriError::Headers(_))),
            ("sip:bad host", |e| matches!(e, UriError::BadHost(_))),
            ("sip:-bad.example", |e| matches!(e, UriError::BadHost(_))),
            ("sip:a..b", |e| matches!(e, UriError::BadHost(_))),
            ("sip:@host", |e| matches!(e, UriError::EmptyUser(_))),
            ("sip:host;lr", |e| matches!(e, UriError::Param { .. })),
            ("sip:host;transprt=tcp", |e| {
                matches!(e, UriError::Param { .. })
            }),
            ("sip:host;transport=udp;transport=tcp", |e| {
                matches!(e, UriError::Param { .. })
            }),
        ];
        for (input, check) in cases {
            let err = TargetUri::parse(input).expect_err(input);
            assert!(check(&err), "{input}: unexpected {err:?}");
            assert!(err.to_string().contains(input.trim()), "{err}");
        }
    }
}
