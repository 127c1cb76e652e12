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

    /// The stream to serve on an accepted connection: after the TLS handshake, if any.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let _ = tcp.set_nodelay(true);
        match &self.0 {
            None => Ok(Box::new(tcp)),
            Some(acceptor) => Ok(Box::new(acceptor.accept(tcp).await?)),
        }
    }
}
