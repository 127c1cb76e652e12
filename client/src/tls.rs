//! Dialing a member, plain or TLS: clients and the peer transport open their connections here.
//! Without a configuration (`http://` URLs, and always in the simulator) a stream is plain TCP,
//! so the code above sees one stream type either way. The rustls configurations themselves are
//! built from certificate files by the server shell and by keelctl.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// A byte stream to or from a member: plain TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection as the network code uses it.
pub type Stream = Box<dyn Io>;

/// How connections to members are opened: plain, or TLS with this configuration.
#[derive(Clone, Default)]
pub struct Dial(Option<TlsConnector>);

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Dial(tls)" } else { "Dial(plain)" })
    }
}

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
