//! The probe target URI: `sip:host[:port][;transport=udp|tcp|tls]` or `sips:host[:port]`.
//! Parsed here so a bad target is a config problem with a line; the prober reuses
//! [`SipTarget::parse`] instead of parsing the string again. No DNS: a host name stays a name.

use std::fmt;
use std::net::IpAddr;

use super::SipTransport;

/// A parsed probe target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// `sips:` (TLS required end to end).
    pub secure: bool,
    /// The user part, when the URI has `user@`.
    pub user: Option<String>,
    /// Host: a name, an IPv4 address, or an IPv6 address without brackets.
    pub host: SipHost,
    /// Port, when given (the prober applies 5060/5061 or SRV otherwise).
    pub port: Option<u16>,
    /// Transport: `transport=` param, else TLS for `sips:`, else UDP.
    pub transport: SipTransport,
}

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipHost {
    /// A DNS name, resolved by the prober.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl fmt::Display for SipHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipHost::Name(name) => f.write_str(name),
            SipHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            SipHost::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl SipTarget {
    /// Parses a target URI; the error says what is wrong, naming the input.
    pub fn parse(uri: &str) -> Result<SipTarget, String> {
        let (secure, rest) = if let Some(rest) = strip_prefix_ci(uri, "sips:") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(uri, "sip:") {
            (false, rest)
        } else {
            return Err(format!(
                "expected a sip: or sips: uri like \"sip:pbx.example.com:5060;transport=udp\", got \"{uri}\""
            ));
        };
        if rest.contains(['?', ' ', '\t', '>', '<']) {
            return Err(format!(
                "uri headers, spaces and angle brackets are not allowed in a target, got \"{uri}\""
            ));
        }
        let (hostport_user, params) = match rest.split_once(';') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        let (user, hostport) = match hostport_user.rsplit_once('@') {
            Some((user, hp)) if !user.is_empty() => (Some(user.to_string()), hp),
            Some(_) => return Err(format!("empty user part before \"@\" in \"{uri}\"")),
            None => (None, hostport_user),
        };
        let (host, port) = parse_hostport(hostport).map_err(|e| format!("{e} in \"{uri}\""))?;

        let mut transport = None;
        for param in params.into_iter().flat_map(|p| p.split(';')) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if !name.eq_ignore_ascii_case("transport") {
                return Err(format!(
                    "unsupported uri parameter \"{name}\" in \"{uri}\"; only transport=udp|tcp|tls is understood"
                ));
            }
            if transport.is_some() {
                return Err(format!("transport is given twice in \"{uri}\""));
            }
            transport = Some(match value.to_ascii_lowercase().as_str() {
                "udp" => SipTransport::Udp,
                "tcp" => SipTransport::Tcp,
                "tls" => SipTransport::Tls,
                other => {
                    return Err(format!(
                        "transport must be udp, tcp or tls, got \"{other}\" in \"{uri}\""
                    ));
                }
            });
        }
        let transport = match (secure, transport) {
            (true, Some(SipTransport::Udp)) => {
                return Err(format!(
                    "a sips: uri needs TLS; transport=udp is not possible in \"{uri}\""
                ));
            }
            // RFC 3261 §26.2: sips with transport=tcp means TLS over TCP.
            (true, _) => SipTransport::Tls,
            (false, Some(t)) => t,
            (false, None) => SipTransport::Udp,
        };
        Ok(SipTarget {
            secure,
            user,
            host,
            port,
            transport,
        })
    }

    /// The port to use when none is given: 5061 for TLS, else 5060.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.transport {
            SipTransport::Tls => 5061,
            SipTransport::Udp | SipTransport::Tcp => 5060,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_hostport(hostport: &str) -> Result<(SipHost, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed \"[\" in the IPv6 host".to_string())?;
        let ip: std::net::Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("\"{v6}\" is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected \"{p}\" after the IPv6 host"))?,
            ),
        };
        (SipHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if host.contains(':') || port.is_some_and(|p| p.contains(':')) {
            return Err("an IPv6 host must be in brackets, like [2001:db8::1]".into());
        }
        if host.is_empty() {
            return Err("missing host".into());
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => SipHost::Ip(ip),
            Err(_) if valid_hostname(host) => SipHost::Name(host.to_ascii_lowercase()),
            Err(_) => return Err(format!("\"{host}\" is not a valid host name")),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("port must be 1 to 65535, got \"{p}\"")),
            Ok(n) => Some(n),
        },
    };
    Ok((host, port))
}

fn valid_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = SipTarget::parse("sip:pbx.example.com").unwrap();
        assert_eq!(t.host, SipHost::Name("pbx.example.com".into()));
        assert_eq!(
            (t.port, t.transport, t.secure),
            (None, SipTransport::Udp, false)
        );
        assert_eq!(t.port_or_default(), 5060);

        let t = SipTarget::parse("sip:10.0.0.5:5080;transport=TCP").unwrap();
        assert_eq!(t.host, SipHost::Ip([10, 0, 0, 5].into()));
        assert_eq!((t.port, t.transport), (Some(5080), SipTransport::Tcp));

        let t = SipTarget::parse("sip:[2001:db8::1]:5062;transport=tls").unwrap();
        assert_eq!(t.host.to_string(), "[2001:db8::1]");
        assert_eq!((t.port, t.transport), (Some(5062), SipTransport::Tls));

        let t = SipTarget::parse("sips:sbc.example.net").unwrap();
        assert_eq!(
            (t.secure, t.transport, t.port_or_default()),
            (true, SipTransport::Tls, 5061)
        );

        let t = SipTarget::parse("sip:ping@127.0.0.1:5060").unwrap();
        assert_eq!(t.user.as_deref(), Some("ping"));
        assert_eq!(
            SipTarget::parse("SIP:[::1]").unwrap().host,
            SipHost::Ip("::1".parse().unwrap())
        );
    }

    #[test]
    fn bad_targets_say_why() {
        for (uri, needle) in [
            ("http://pbx", "expected a sip: or sips: uri"),
            ("pbx.example.com:5060", "expected a sip: or sips: uri"),
            ("sip:", "missing host"),
            ("sip:pbx:0", "port must be 1 to 65535"),
            ("sip:pbx:70000", "port must be 1 to 65535"),
            ("sip:pbx:abc", "port must be"),
            (
                "sip:pbx;transport=sctp",
                "transport must be udp, tcp or tls",
            ),
            ("sip:pbx;lr", "unsupported uri parameter \"lr\""),
            ("sips:pbx;transport=udp", "needs TLS"),
            ("sip:2001:db8::1", "must be in brackets"),
            ("sip:[2001:db8::1", "unclosed"),
            ("sip:bad_host!", "not a valid host name"),
            ("sip:pbx?subject=x", "not allowed"),
            ("sip:pbx;transport=udp;transport=tcp", "twice"),
        ] {
            let e = SipTarget::parse(uri).unwrap_err();
            assert!(e.contains(needle), "{uri}: {e}");
        }
    }
}
