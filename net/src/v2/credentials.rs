//! Who a v2 keys request comes from: HTTP basic auth (`curl -u alice:secret`, etcdctl v2's
//! `--username`), checked against the same users as v3's, else the connection's client
//! certificate user. While auth is off, credentials are ignored, as etcd ignores them; a wrong
//! password is refused with etcd's v2 answer (110, "Insufficient credentials").

use base64::Engine as _;
use keel_core::api::auth::Caller;
use keel_core::api::error::Error;

use super::error::V2Error;
use crate::backend::Backend;
use crate::password;
use crate::v3::auth::{caller_of, CertificateUser};

/// The caller of a request with these headers and this connection's certificate user.
pub async fn caller<B: Backend>(
    backend: &B,
    headers: &hyper::HeaderMap,
    certificate: Option<&CertificateUser>,
) -> Result<Caller, V2Error> {
    let Some((user, pass)) = basic(headers) else { return Ok(caller_of(None, certificate)) };
    match password::verify(backend, &user, pass).await {
        Ok(_) => Ok(Caller::User(user)),
        Err(Error::AuthNotEnabled) => Ok(caller_of(None, certificate)),
        Err(e) => Err(V2Error::from(match e {
            Error::AuthFailed => Error::PermissionDenied,
            other => other,
        })),
    }
}

/// The user and password of an `Authorization: Basic` header, if there is a well-formed one.
fn basic(headers: &hyper::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::basic;

    #[test]
    fn basic_credentials_are_read_and_garbage_is_not() {
        let with = |v: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(hyper::header::AUTHORIZATION, v.parse().unwrap());
            basic(&headers)
        };
        assert_eq!(with("Basic YWxpY2U6czpjcmV0"), Some(("alice".into(), "s:cret".into())), "alice:s:cret");
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Bearer abc"), None);
        assert_eq!(basic(&hyper::HeaderMap::new()), None);
    }
}
