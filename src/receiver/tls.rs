//! Server TLS for the receivers: PEM certificate chain and key → a rustls acceptor on the `ring`
//! provider.
//!
//! The provider is passed explicitly rather than taken from the process default, so the receiver
//! keeps working whichever other rustls provider a dependency compiles in.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::ReceiverError;
use crate::config::ServerTlsConfig;

/// ALPN for the gRPC server (HTTP/2 only).
pub(crate) const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for the HTTP server (HTTP/1.1 only).
pub(crate) const ALPN_HTTP: &[&[u8]] = &[b"http/1.1"];

/// Loads the files named in `cfg` and builds an acceptor offering `alpn`.
pub(crate) fn acceptor(
    cfg: &ServerTlsConfig,
    transport: &'static str,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, ReceiverError> {
    let error = |what, path: &Path, reason: String| ReceiverError::Tls {
        transport,
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| error("certificate", &cfg.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(error(
            "certificate",
            &cfg.cert_file,
            "no PEM certificate found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| error("private key", &cfg.key_file, e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| error("certificate", &cfg.cert_file, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| error("private key", &cfg.key_file, e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, data: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "callpulse-tls-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_a_self_signed_pair() {
        let dir = temp_dir("ok");
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cfg = ServerTlsConfig {
            cert_file: write(&dir, "c.pem", &key.cert.pem()),
            key_file: write(&dir, "k.pem", &key.signing_key.serialize_pem()),
        };
        assert!(acceptor(&cfg, "http", ALPN_HTTP).is_ok());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = temp_dir("bad");
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cfg = ServerTlsConfig {
            cert_file: dir.join("missing.pem"),
            key_file: write(&dir, "k.pem", &key.signing_key.serialize_pem()),
        };
        let e = acceptor(&cfg, "grpc", ALPN_GRPC).err().unwrap().to_string();
        assert!(
            e.contains("missing.pem") && e.contains("certificate"),
            "{e}"
        );

        let cfg = ServerTlsConfig {
            cert_file: write(&dir, "c.pem", &key.cert.pem()),
            key_file: write(&dir, "empty.pem", "nothing here"),
        };
        let e = acceptor(&cfg, "grpc", ALPN_GRPC).err().unwrap().to_string();
        assert!(e.contains("empty.pem") && e.contains("private key"), "{e}");
    }
}
