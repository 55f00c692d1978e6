//! Resolving a probe target (the parsing is [`crate::sip::uri`]'s, re-exported here): a numeric
//! host as is, a name through the system resolver (A/AAAA) on every call. SRV and NAPTR
//! (RFC 3263 §4.1–4.2) are not consulted.

use std::net::SocketAddr;

pub use crate::sip::uri::*;

/// The socket addresses of `uri`: the numeric host with the effective port, or every A/AAAA
/// record of the name; an error when a name has none.
pub async fn resolve(uri: &TargetUri) -> std::io::Result<Vec<SocketAddr>> {
    let port = uri.port();
    match &uri.host {
        TargetHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        TargetHost::Name(name) => {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await?
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{name} has no A or AAAA record"),
                ));
            }
            Ok(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn numeric_hosts_resolve_without_dns() {
        let uri = TargetUri::parse("sip:[::1]:5099").unwrap();
        assert_eq!(
            resolve(&uri).await.unwrap(),
            vec!["[::1]:5099".parse::<SocketAddr>().unwrap()]
        );
        let uri = TargetUri::parse("sip:localhost:5099").unwrap();
        let found = resolve(&uri).await.unwrap();
        assert!(
            found
                .iter()
                .all(|a| a.port() == 5099 && a.ip().is_loopback())
        );
    }
}
