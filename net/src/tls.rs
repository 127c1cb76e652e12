//! TLS on a member's connections, when its URLs are `https://`: the client listener, the peer
//! listener and the peer dialer wrap their TCP streams here. Without a configuration (`http://`
//! URLs, and always in the simulator) streams pass through as plain TCP, so the rest of the
//! network code sees one stream type either way. The rustls configurations themselves are
//! built from the operator's certificate files by the server shell.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A byte stream to a client or peer: plain TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection as the network code uses it.
pub type Stream = Box<dyn Io>;

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

/// How the peer dialer opens connections: plain, or TLS with this configuration.
#[derive(Clone, Default)]
pub struct Dial(Option<TlsConnector>);

impl Dial {
    /// TLS with `config` (the authorities peers' certificates must chain to, and this
    /// member's own certificate when peers ask for one).
    pub fn tls(config: Arc<ClientConfig>) -> Dial {
        Dial(Some(TlsConnector::from(config)))
    }

    /// How to dial a member at `url`: TLS only for an `https://` URL, as etcd chooses by scheme.
    pub fn for_url(&self, url: &str) -> Dial {
        match url.starts_with("https://") {
            true => self.clone(),
            false => Dial::default(),
        }
    }

    /// Connect to `addr` (`host:port`), the TLS handshake included; the peer's certificate must
    /// name `host`.
    pub async fn connect(&self, addr: &str) -> io::Result<Stream> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let Some(connector) = &self.0 else {
            return Ok(Box::new(tcp));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{host} cannot name a TLS server: {e}"))
        })?;
        Ok(Box::new(connector.connect(name, tcp).await?))
    }
}
