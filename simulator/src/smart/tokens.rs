//! The tokens an environment has issued: access and refresh tokens with their grant, expiry
//! (on the simulated clock), revocation, and the authorization they came from (so reusing an
//! authorization code revokes everything issued from it).
//!
//! A bearer token is accepted only if it is the exact string this environment issued and
//! recorded: a forged, altered or foreign token is unknown here whatever its signature says.
//! Tokens live in memory and do not survive a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::access::Grant;

/// Records kept before expired ones are pruned on insert.
const PRUNE_AT: usize = 50_000;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token (a signed JWT), presented to the FHIR API.
    Access,
    /// A refresh token (opaque), presented to the token endpoint.
    Refresh,
}

impl TokenKind {
    /// `access` or `refresh`, as the audit trail names it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// One issued token.
#[derive(Debug)]
pub struct TokenRecord {
    /// Access or refresh.
    pub kind: TokenKind,
    /// Its id (the access token's `jti`; a refresh token's own id).
    pub id: String,
    /// What it grants.
    pub grant: Arc<Grant>,
    /// When it was issued (simulated clock).
    pub issued_at: OffsetDateTime,
    /// When it stops being accepted (simulated clock); `None` for a refresh token that lives
    /// until revoked.
    pub expires_at: Option<OffsetDateTime>,
    /// The authorization it descends from (a code or a client-credentials grant): reuse of a
    /// code revokes the whole family.
    pub family: String,
    /// The scope the client asked for when this token was issued (space-separated).
    pub scope_requested: String,
    revoked: AtomicBool,
}

impl TokenRecord {
    /// A new, unrevoked record.
    pub fn new(
        kind: TokenKind,
        id: String,
        grant: Arc<Grant>,
        issued_at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
        family: String,
        scope_requested: String,
    ) -> Self {
        Self {
            kind,
            id,
            grant,
            issued_at,
            expires_at,
            family,
            scope_requested,
            revoked: AtomicBool::new(false),
        }
    }

    /// Whether it was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    /// Whether it is expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Whether it is accepted at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        !self.is_revoked() && !self.is_expired(now)
    }

    /// Revokes it.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }
}

/// Every token one environment has issued, by its exact text.
#[derive(Debug, Default)]
pub struct TokenStore {
    by_text: RwLock<HashMap<String, Arc<TokenRecord>>>,
}

impl TokenStore {
    /// Records an issued token.
    pub fn insert(
        &self,
        text: String,
        record: TokenRecord,
        now: OffsetDateTime,
    ) -> Arc<TokenRecord> {
        let record = Arc::new(record);
        let mut map = self.write();
        if map.len() >= PRUNE_AT {
            map.retain(|_, r| !r.is_expired(now) && !r.is_revoked());
        }
        map.insert(text, Arc::clone(&record));
        record
    }

    /// The record of a token, by its exact text (active or not).
    pub fn get(&self, text: &str) -> Option<Arc<TokenRecord>> {
        self.read().get(text).cloned()
    }

    /// Revokes every token of an authorization family; returns how many were active.
    pub fn revoke_family(&self, family: &str) -> usize {
        let map = self.read();
        let mut count = 0;
        for record in map.values().filter(|r| r.family == family) {
            if !record.is_revoked() {
                count += 1;
            }
            record.revoke();
        }
        count
    }

    /// Revokes every token matching `pick`; returns how many were active.
    pub fn revoke_where(&self, pick: impl Fn(&TokenRecord) -> bool) -> usize {
        let map = self.read();
        let mut count = 0;
        for record in map.values().filter(|r| pick(r)) {
            if !record.is_revoked() {
                count += 1;
            }
            record.revoke();
        }
        count
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<TokenRecord>>> {
        self.by_text.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<TokenRecord>>> {
        self.by_text.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(family: &str, expires: Option<OffsetDateTime>) -> TokenRecord {
        TokenRecord::new(
            TokenKind::Access,
            "j".into(),
            Arc::new(Grant::default()),
            OffsetDateTime::UNIX_EPOCH,
            expires,
            family.into(),
            String::new(),
        )
    }

    #[test]
    fn expiry_revocation_and_families() {
        let store = TokenStore::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let later = t0 + time::Duration::seconds(60);
        store.insert("a".into(), record("f1", Some(later)), t0);
        store.insert("b".into(), record("f1", None), t0);
        store.insert("c".into(), record("f2", None), t0);
        let a = store.get("a").expect("recorded");
        assert!(a.is_active(t0));
        assert!(!a.is_active(later));
        assert_eq!(store.revoke_family("f1"), 2);
        assert!(!store.get("b").expect("recorded").is_active(t0));
        assert!(store.get("c").expect("recorded").is_active(t0));
        assert!(store.get("zzz").is_none());
    }
}
