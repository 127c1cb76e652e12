//! Passwords: hashing a new one and checking one against the stored hash, with bcrypt, on
//! tokio's blocking pool. bcrypt is slow on purpose (each cost step doubles the work); run on
//! the async threads it would stall every other request. The core only ever sees hashes.

use keel_core::api::error::{Error, Result};
use keel_core::api::request::{Request, Response};

use crate::backend::Backend;

/// etcd's default bcrypt cost (`--bcrypt-cost`, Go's `bcrypt.DefaultCost`).
pub const DEFAULT_BCRYPT_COST: u32 = 10;

/// Run `work` off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    // madsim runs the closure as one of its deterministic tasks (it marks this deprecated: a
    // simulation has no blocking threads); tokio on its blocking pool.
    #[allow(deprecated)]
    let joined = tokio::task::spawn_blocking(work).await;
    joined.map_err(|e| Error::Internal(e.to_string()))
}

/// The bcrypt hash of `password` at `cost`.
pub async fn hash(password: String, cost: u32) -> Result<String> {
    let hashed = blocking(move || bcrypt::hash(password, cost)).await?;
    hashed.map_err(|e| Error::Internal(format!("cannot hash the password: {e}")))
}

/// Check `password` against user `name`'s stored hash; the hash when it matches. etcd's
/// "authentication failed" for a wrong password, an unknown user or one without a password;
/// "not enabled" while auth is off.
pub async fn verify<B: Backend>(backend: &B, name: &str, password: String) -> Result<String> {
    let stored = match backend.call(Request::PasswordHash { name: name.to_string() }).await? {
        Response::PasswordHash(r) => r.hash,
        _ => return Err(Error::Internal("unexpected response".into())),
    };
    let hash = stored.clone();
    match blocking(move || bcrypt::verify(password, &hash).unwrap_or(false)).await? {
        true => Ok(stored),
        false => Err(Error::AuthFailed),
    }
}
