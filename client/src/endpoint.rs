//! Client URLs: what a tool is given (`http://host:port`, `https://host:port`, or a bare
//! `host:port`) and what it connects to.

use std::net::SocketAddr;

use crate::tls::Dial;

/// A member's client URL, the `host:port` to connect to, and how to dial it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `scheme://host:port`, as errors and `--cluster` listings name the endpoint.
    pub url: String,
    /// `host:port`: where to connect, and the `Host` header.
    pub authority: String,
    /// Plain for `http://`, TLS for `https://` (as etcd chooses by scheme).
    pub tls: Dial,
}

impl Endpoint {
    /// Parse `http://host:port` or `https://host:port` (without a scheme: http); `tls` is how
    /// an https endpoint is dialed.
    pub fn parse(raw: &str, tls: &Dial) -> Result<Endpoint, String> {
        let raw = raw.trim().trim_end_matches('/');
        let url = if raw.contains("://") { raw.to_string() } else { format!("http://{raw}") };
        let Some(scheme) = ["http", "https"].into_iter().find(|s| url.starts_with(&format!("{s}://"))) else {
            return Err(format!("endpoint {raw}: only http:// and https:// endpoints are supported"));
        };
        let authority = host_port(&url).ok_or_else(|| format!("endpoint {raw} is not a URL like http://host:port"))?;
        let url = format!("{scheme}://{authority}");
        Ok(Endpoint { tls: tls.for_url(&url), url, authority })
    }

    /// Parse every non-empty endpoint of a list, failing on the first bad one or on none.
    pub fn parse_list(raw: &[String], tls: &Dial) -> Result<Vec<Endpoint>, String> {
        let endpoints: Vec<Endpoint> =
            raw.iter().filter(|r| !r.trim().is_empty()).map(|r| Endpoint::parse(r, tls)).collect::<Result<_, _>>()?;
        if endpoints.is_empty() {
            return Err("no endpoints given".into());
        }
        Ok(endpoints)
    }

    /// A plain endpoint at a socket address (the simulator's and the benchmarks' members).
    pub fn plain(addr: SocketAddr) -> Endpoint {
        Endpoint { url: format!("http://{addr}"), authority: addr.to_string(), tls: Dial::default() }
    }
}

/// The `host:port` of an `http://` or `https://` URL (any path after it ignored), if it has one.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let hostport = rest.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| hostport.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_host_and_port() {
        assert_eq!(host_port("http://127.0.0.1:2380"), Some("127.0.0.1:2380".into()));
        assert_eq!(host_port("http://m1:2380/x"), Some("m1:2380".into()));
        assert_eq!(host_port("127.0.0.1:2380"), None);
        assert_eq!(host_port("http://h:notaport"), None);
    }

    #[test]
    fn endpoints_default_to_http_and_refuse_other_schemes() {
        let dial = Dial::default();
        let e = Endpoint::parse(" 10.0.0.1:2379/ ", &dial).unwrap();
        assert_eq!((e.url.as_str(), e.authority.as_str()), ("http://10.0.0.1:2379", "10.0.0.1:2379"));
        assert!(Endpoint::parse("unix://x", &dial).unwrap_err().contains("only http:// and https://"));
        assert!(Endpoint::parse("http://nohost", &dial).unwrap_err().contains("not a URL like"));
        assert_eq!(Endpoint::parse_list(&[" ".into()], &dial).err().as_deref(), Some("no endpoints given"));
    }
}
