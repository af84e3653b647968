//! Sessions in the store: one entry per (profile, MFA serial, long-term key),
//! plus an index entry (no secrets) so `status` and `clear` can list them on
//! stores that cannot be searched.

use crate::credentials::{MAX_ENTRY_BYTES, Session};
use crate::store::{CredentialStore, StoreError};
use serde::{Deserialize, Serialize};

const INDEX: &str = "index";

/// Names one cached session. Keyed by the long-term key ID too, so a rotated
/// key never gets an old session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    #[serde(rename = "p")]
    pub profile: String,
    #[serde(rename = "s")]
    pub serial: String,
    #[serde(rename = "k")]
    pub source_key_id: String,
}

impl CacheKey {
    fn entry_name(&self) -> String {
        format!(
            "session|{}|{}|{}",
            self.profile, self.serial, self.source_key_id
        )
    }
}

/// One line of the index: the key and when its session expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Indexed {
    #[serde(flatten)]
    pub key: CacheKey,
    #[serde(rename = "e")]
    pub expiration: u64,
}

pub struct Cache<'a> {
    pub store: &'a dyn CredentialStore,
}

impl Cache<'_> {
    /// The cached session, if any. Unparseable entries are a miss.
    pub fn load(&self, key: &CacheKey) -> Result<Option<Session>, StoreError> {
        Ok(self
            .store
            .get(&key.entry_name())?
            .and_then(|b| Session::from_entry(&b)))
    }

    /// Stores a session and notes it in the index. The caller holds the
    /// profile lock; the index is read-modify-written, so a concurrent writer
    /// for another profile may drop a line, which only hides it from `status`.
    pub fn save(&self, key: &CacheKey, session: &Session) -> Result<(), StoreError> {
        let value = session.to_entry();
        if value.len() > MAX_ENTRY_BYTES {
            return Err(StoreError::Unavailable {
                store: self.store.name(),
                detail: format!(
                    "the session is {} bytes, more than a keyring entry holds",
                    value.len()
                ),
            });
        }
        self.store.set(&key.entry_name(), &value)?;
        let mut index = self.index();
        index.retain(|i| i.key != *key);
        index.push(Indexed {
            key: key.clone(),
            expiration: session.expiration,
        });
        self.write_index(index)
    }

    /// Deletes the sessions `pick` selects; returns what was removed.
    pub fn remove(&self, pick: impl Fn(&CacheKey) -> bool) -> Result<Vec<Indexed>, StoreError> {
        let index = self.index();
        let (gone, kept): (Vec<_>, Vec<_>) = index.into_iter().partition(|i| pick(&i.key));
        for i in &gone {
            self.store.delete(&i.key.entry_name())?;
        }
        if !gone.is_empty() {
            self.write_index(kept)?;
        }
        Ok(gone)
    }

    /// Every session noted in the index.
    pub fn index(&self) -> Vec<Indexed> {
        match self.store.get(INDEX) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The serial last used for this profile and key, for profiles that do
    /// not name one (so a cache hit needs no IAM call).
    pub fn known_serial(&self, profile: &str, source_key_id: &str) -> Option<String> {
        self.index()
            .into_iter()
            .filter(|i| i.key.profile == profile && i.key.source_key_id == source_key_id)
            .max_by_key(|i| i.expiration)
            .map(|i| i.key.serial)
    }

    fn write_index(&self, mut index: Vec<Indexed>) -> Result<(), StoreError> {
        // Stay under the entry size limit: drop the oldest lines first.
        index.sort_by_key(|i| std::cmp::Reverse(i.expiration));
        loop {
            let bytes = serde_json::to_vec(&index).expect("plain data serialises");
            if bytes.len() <= MAX_ENTRY_BYTES || index.is_empty() {
                return if index.is_empty() {
                    self.store.delete(INDEX).map(|_| ())
                } else {
                    self.store.set(INDEX, &bytes)
                };
            }
            index.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;

    fn key(p: &str) -> CacheKey {
        CacheKey {
            profile: p.into(),
            serial: "arn:aws:iam::1:mfa/a".into(),
            source_key_id: "AKIA1".into(),
        }
    }

    fn session(exp: u64) -> Session {
        Session {
            access_key_id: "ASIA1".into(),
            secret_access_key: Secret::new("s".into()),
            session_token: Secret::new("t".into()),
            expiration: exp,
        }
    }

    #[test]
    fn save_load_index_remove() {
        let store = MemoryStore::default();
        let cache = Cache { store: &store };
        cache.save(&key("a"), &session(10)).unwrap();
        cache.save(&key("b"), &session(20)).unwrap();
        cache.save(&key("a"), &session(30)).unwrap();
        assert_eq!(cache.load(&key("a")).unwrap().unwrap().expiration, 30);
        assert_eq!(cache.index().len(), 2);
        assert_eq!(
            cache.known_serial("a", "AKIA1").as_deref(),
            Some("arn:aws:iam::1:mfa/a")
        );
        assert_eq!(
            cache.known_serial("a", "AKIA2"),
            None,
            "a rotated key finds nothing"
        );
        let gone = cache.remove(|k| k.profile == "a").unwrap();
        assert_eq!(gone.len(), 1);
        assert!(cache.load(&key("a")).unwrap().is_none());
        assert!(cache.load(&key("b")).unwrap().is_some());
    }

    #[test]
    fn corrupt_entry_is_a_miss() {
        let store = MemoryStore::default();
        store
            .entries
            .borrow_mut()
            .insert(key("a").entry_name(), b"\x00garbage".to_vec());
        store
            .entries
            .borrow_mut()
            .insert("index".into(), b"not json".to_vec());
        let cache = Cache { store: &store };
        assert!(cache.load(&key("a")).unwrap().is_none());
        assert!(cache.index().is_empty());
        cache.save(&key("a"), &session(5)).unwrap();
        assert!(cache.load(&key("a")).unwrap().is_some());
    }

    #[test]
    fn index_stays_under_size_limit() {
        let store = MemoryStore::default();
        let cache = Cache { store: &store };
        for n in 0..100u64 {
            cache
                .save(&key(&format!("profile-{n}")), &session(n))
                .unwrap();
        }
        let bytes = store.entries.borrow().get("index").unwrap().len();
        assert!(bytes <= MAX_ENTRY_BYTES, "{bytes}");
        assert!(
            cache.index().iter().any(|i| i.expiration == 99),
            "newest kept"
        );
    }
}
