//! TLS from etcd's flags: `--cert-file`, `--key-file`, `--trusted-ca-file` and
//! `--client-cert-auth` for clients, the same with `--peer-` for members, turned into the
//! rustls configurations the network shell wraps its streams with (`keel_net::tls`). As on
//! etcd, a URL's scheme decides: `https://` listeners need a certificate and key, `http://`
//! ones ignore them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keel_net::tls::{Accept, Dial};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// One side's TLS files and whether the other end must show a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM) this end presents.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Authorities (PEM) the other end's certificate must chain to.
    pub trusted_ca: Option<PathBuf>,
    /// Whether the other end must present a certificate signed by `trusted_ca`.
    pub client_cert_auth: bool,
}

impl TlsFiles {
    /// No certificate or key given (etcd's `TLSInfo.Empty`).
    pub fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none()
    }

    /// How a listener on `url` takes connections: TLS for `https://`, else plain.
    pub fn accept(&self, url: &str, alpn: &[&[u8]]) -> Result<Accept, String> {
        if !url.starts_with("https://") {
            return Ok(Accept::default());
        }
        Ok(Accept::tls(self.server_config(alpn)?))
    }

    /// How to dial `https://` URLs: trusting `trusted_ca` (else the system's authorities) and
    /// showing the certificate, if one is given (members always have one; `keelctl` may not).
    pub fn dial(&self) -> Result<Dial, String> {
        Ok(Dial::tls(self.client_config()?))
    }

    fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, String> {
        let (chain, key) = self.identity()?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        // As etcd: a trusted CA file alone already makes the other end show a certificate.
        let builder = match (&self.trusted_ca, self.client_cert_auth) {
            (None, false) => builder.with_no_client_auth(),
            (ca, _) => {
                let roots = match ca {
                    Some(ca) => roots(ca)?,
                    None => system_roots(),
                };
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| format!("cannot verify client certificates: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_single_cert(chain, key).map_err(|e| format!("the certificate and key do not match: {e}"))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let roots = match &self.trusted_ca {
            Some(ca) => roots(ca)?,
            None => system_roots(),
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match self.is_empty() {
            true => builder.with_no_client_auth(),
            false => {
                let (chain, key) = self.identity()?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the certificate and key do not match: {e}"))?
            }
        };
        Ok(Arc::new(config))
    }

    /// The certificate chain and key, read and parsed.
    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err("a certificate file and a key file must be given together".into());
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
        Ok((chain, key))
    }
}

/// Keel's one crypto provider (ring), passed explicitly rather than installed process-wide.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Every certificate in a PEM file; an empty file is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if read.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(read)
}

/// The authorities in a PEM file.
fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(store)
}

/// The operating system's authorities, for peers dialed without `--peer-trusted-ca-file`.
fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("system certificates: {e}");
    }
    store.add_parsable_certificates(found.certs);
    store
}
