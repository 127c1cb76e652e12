//! etcd's simple tokens: the table of issued tokens, who each stands for, and when it expires.
//! Tokens are issued through the log (every member records the same one, so a client may use
//! it on any member) but the table is volatile, as etcd's is: a restarted member knows none,
//! and its clients authenticate again. A token's TTL restarts whenever it is used.

use std::collections::BTreeMap;

/// One issued token.
#[derive(Debug)]
struct Issued {
    user: String,
    expires_ms: u64,
}

/// The issued tokens of one member.
#[derive(Debug)]
pub(crate) struct Tokens {
    ttl_ms: u64,
    issued: BTreeMap<String, Issued>,
    /// The table's size after its last sweep of expired tokens: the next sweep comes when it
    /// has doubled, so the table stays within twice the live tokens at a constant cost per issue.
    swept_at: usize,
}

impl Tokens {
    /// A table whose tokens live `ttl_ms` after their last use (etcd's `--auth-token-ttl`).
    pub fn new(ttl_ms: u64) -> Self {
        Tokens { ttl_ms, issued: BTreeMap::new(), swept_at: 0 }
    }

    /// Record `token` for `user`, issued at `now_ms`.
    pub fn issue(&mut self, token: String, user: String, now_ms: u64) {
        if self.issued.len() >= (2 * self.swept_at).max(64) {
            self.issued.retain(|_, t| t.expires_ms > now_ms);
            self.swept_at = self.issued.len();
        }
        self.issued.insert(token, Issued { user, expires_ms: now_ms + self.ttl_ms });
    }

    /// The user `token` stands for, if it is live at `now_ms`; using it extends its life.
    pub fn user(&mut self, token: &str, now_ms: u64) -> Option<&str> {
        let issued = self.issued.get_mut(token).filter(|t| t.expires_ms > now_ms)?;
        issued.expires_ms = now_ms + self.ttl_ms;
        Some(&issued.user)
    }

    /// Forget every token of `user` (its password changed, or it was deleted).
    pub fn revoke_user(&mut self, user: &str) {
        self.issued.retain(|_, t| t.user != user);
    }

    /// Forget every token (auth was disabled).
    pub fn clear(&mut self) {
        self.issued.clear();
        self.swept_at = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Tokens;

    #[test]
    fn tokens_expire_unless_used_and_can_be_revoked() {
        let mut tokens = Tokens::new(1000);
        tokens.issue("a.1".into(), "alice".into(), 0);
        tokens.issue("b.2".into(), "bob".into(), 0);
        assert_eq!(tokens.user("a.1", 900), Some("alice"));
        assert_eq!(tokens.user("a.1", 1800), Some("alice"), "used at 900: lives to 1900");
        assert_eq!(tokens.user("b.2", 1800), None, "unused since 0: gone at 1000");
        assert_eq!(tokens.user("nope", 0), None);
        tokens.revoke_user("alice");
        assert_eq!(tokens.user("a.1", 1800), None);
    }

    #[test]
    fn expired_tokens_are_swept_as_the_table_grows() {
        let mut tokens = Tokens::new(10);
        for i in 0..10_000u64 {
            tokens.issue(format!("t.{i}"), "u".into(), i * 100);
        }
        assert!(tokens.issued.len() <= 128, "{} kept", tokens.issued.len());
    }
}
