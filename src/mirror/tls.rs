//! TLS for the mirror's HTTPS listener: PEM files, or a self-signed
//! certificate made on first start (for quick setups and onion services,
//! where the signature, not the certificate, authenticates content).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsSource;
use crate::error::{Error, Result};

pub fn acceptor(src: &TlsSource, data_dir: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let (cert_path, key_path) = match src {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned => self_signed(data_dir)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| Error::config(cert_path.display().to_string(), format!("cannot read certificate: {e}")))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::config(cert_path.display().to_string(), format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config(cert_path.display().to_string(), "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        Error::config(key_path.display().to_string(), format!("cannot read private key: {e}"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Environment(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::config(cert_path.display().to_string(), format!("certificate and key do not match: {e}"))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Makes (once) and returns a self-signed certificate in `data_dir/tls/`.
fn self_signed(data_dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    crate::fsutil::mkdirs(&dir)?;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| Error::Environment(format!("cannot make a self-signed certificate: {e}")))?;
    crate::fsutil::write_atomic(&key, ck.signing_key.serialize_pem().as_bytes(), 0o600)?;
    crate::fsutil::write_atomic(&cert, ck.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate");
    Ok((cert, key))
}
