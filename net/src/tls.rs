//! TLS on a member's listeners, when its URLs are `https://`: the client and peer listeners wrap
//! accepted TCP streams here (dialing is keel-client's [`Dial`], which the peer transport uses
//! too). Without a configuration streams pass through as plain TCP, so the rest of the network
//! code sees one [`Stream`] type either way.

use std::io;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use keel_client::tls::{Dial, Io, Stream};

/// How a listener takes connections: plain, or TLS with this configuration.
#[derive(Clone, Default)]
pub struct Accept(Option<TlsAcceptor>);

impl Accept {
    /// TLS with `config` (the server's certificate, and whether clients must present one).
    pub fn tls(config: Arc<ServerConfig>) -> Accept {
        Accept(Some(TlsAcceptor::from(config)))
    }

    /// The stream to serve on an accepted connection: after the TLS handshake, if any, with
    /// the common name of the client's certificate when it showed one (verified by then).
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<(Stream, Option<String>)> {
        let _ = tcp.set_nodelay(true);
        match &self.0 {
            None => Ok((Box::new(tcp), None)),
            Some(acceptor) => {
                let tls = acceptor.accept(tcp).await?;
                let certificates = tls.get_ref().1.peer_certificates();
                let name = certificates.and_then(|c| c.first()).and_then(|der| common_name(der.as_ref()));
                Ok((Box::new(tls), name))
            }
        }
    }
}

/// The subject's common name of a DER certificate, if it has one.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_string())
}
