//! Sessions in the store: one entry per (profile, MFA serial, long-term key),
//! plus an index (no secrets) so `status` and `clear` can list them on stores
//! that cannot be searched (keyutils, Keychain, Credential Manager).
//!
//! The index never drops a line to stay small: it is split over as many
//! entries ("pages") as it needs, each under the entry size limit, and every
//! read-modify-write of it happens under one lock in the state directory, so
//! processes caching different profiles at once cannot lose each other's lines.

use crate::credentials::{MAX_ENTRY_BYTES, Session};
use crate::error::Fail;
use crate::store::{CredentialStore, StoreError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The first page's name; later pages are `index|2`, `index|3`, …
const INDEX: &str = "index";
/// Index pages stay this far under the entry limit.
const PAGE_BYTES: usize = MAX_ENTRY_BYTES - 100;
/// Index writes hold the lock for milliseconds; a holder stuck longer is a bug.
const INDEX_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Lock name of the index. No profile name can contain NUL, so it cannot
/// collide with a profile's lock.
const INDEX_LOCK: &str = "\0index";
/// Index lines of sessions that expired this long ago are dropped (and their
/// entries deleted) when the index is next written.
const KEEP_EXPIRED: u64 = 24 * 3600;

/// Names one cached session. Keyed by the long-term key ID too, so a rotated
/// key never gets an old session.
///
/// An MFA session is one per (profile, MFA serial, long-term key); a role
/// session one per (role profile, role ARN, source chain, long-term key):
/// its serial is noted for `status` but is not part of its name, so a hit
/// needs no look-up of the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    #[serde(rename = "p")]
    pub profile: String,
    #[serde(rename = "s")]
    pub serial: String,
    #[serde(rename = "k")]
    pub source_key_id: String,
    /// Set for role sessions. Index lines written before roles have none.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleRef>,
}

/// What names a role session besides its profile and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    #[serde(rename = "a")]
    pub arn: String,
    /// The source profile first, then the role profiles in between.
    #[serde(rename = "c")]
    pub chain: Vec<String>,
}

impl CacheKey {
    fn entry_name(&self) -> String {
        match &self.role {
            None => format!(
                "session|{}|{}|{}",
                self.profile, self.serial, self.source_key_id
            ),
            Some(r) => format!(
                "role|{}|{}|{}|{}",
                self.profile,
                r.arn,
                r.chain.join(">"),
                self.source_key_id
            ),
        }
    }

    /// The source profile, whose keys (and MFA session) this session came from.
    pub fn source(&self) -> &str {
        self.role
            .as_ref()
            .and_then(|r| r.chain.first())
            .unwrap_or(&self.profile)
    }

    /// Whether `profile` is this session's own profile or one it was got
    /// through (its source, or a role in between): `clear work` clears the
    /// role sessions got with work's keys too.
    pub fn involves(&self, profile: &str) -> bool {
        self.profile == profile
            || self
                .role
                .as_ref()
                .is_some_and(|r| r.chain.iter().any(|c| c == profile))
    }
}

/// One line of the index: the key and when its session expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Indexed {
    #[serde(flatten)]
    pub key: CacheKey,
    #[serde(rename = "e")]
    pub expiration: u64,
    /// When the MFA code behind the session was checked (Unix seconds): a
    /// role session's is its source session's, as AWS's
    /// `aws:MultiFactorAuthAge` counts it.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mfa_at: Option<u64>,
}

/// One page of the index: its lines, and whether another page follows.
#[derive(Serialize, Deserialize, Default)]
struct Page {
    #[serde(rename = "l")]
    lines: Vec<Indexed>,
    #[serde(rename = "n", default)]
    more: bool,
}

pub struct Cache<'a> {
    store: &'a dyn CredentialStore,
    /// Where the index lock lives.
    state_dir: &'a Path,
}

impl<'a> Cache<'a> {
    pub fn new(store: &'a dyn CredentialStore, state_dir: &'a Path) -> Cache<'a> {
        Cache { store, state_dir }
    }

    /// The cached session, if any. Unparseable entries are a miss.
    pub fn load(&self, key: &CacheKey) -> Result<Option<Session>, StoreError> {
        Ok(self
            .store
            .get(&key.entry_name())?
            .and_then(|b| Session::from_entry(&b)))
    }

    /// Stores a session and notes it in the index; `mfa_at` is when the MFA
    /// code behind it was checked.
    pub fn save(
        &self,
        key: &CacheKey,
        session: &Session,
        mfa_at: Option<u64>,
    ) -> Result<(), SaveError> {
        let value = session.to_entry();
        if value.len() > MAX_ENTRY_BYTES {
            return Err(SaveError::TooLarge {
                store: self.store.name(),
                bytes: value.len(),
            });
        }
        self.store.set(&key.entry_name(), &value)?;
        let _lock = self.lock_index()?;
        let mut index = self.index();
        let name = key.entry_name();
        index.retain(|i| i.key.entry_name() != name);
        index.push(Indexed {
            key: key.clone(),
            expiration: session.expiration,
            mfa_at,
        });
        Ok(self.write_index(index)?)
    }

    /// Deletes the sessions `pick` selects; returns what was removed.
    pub fn remove(&self, pick: impl Fn(&CacheKey) -> bool) -> Result<Vec<Indexed>, SaveError> {
        let _lock = self.lock_index()?;
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

    /// Every session noted in the index, over all its pages.
    pub fn index(&self) -> Vec<Indexed> {
        let mut lines = Vec::new();
        for n in 1.. {
            let page: Page = match self.store.get(&page_name(n)) {
                Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
                _ => break,
            };
            lines.extend(page.lines);
            if !page.more {
                break;
            }
        }
        lines
    }

    /// The serial last used for this profile's MFA session and key, for
    /// profiles that do not name one (so a cache hit needs no IAM call).
    pub fn known_serial(&self, profile: &str, source_key_id: &str) -> Option<String> {
        self.index()
            .into_iter()
            .filter(|i| {
                i.key.role.is_none()
                    && i.key.profile == profile
                    && i.key.source_key_id == source_key_id
            })
            .max_by_key(|i| i.expiration)
            .map(|i| i.key.serial)
    }

    /// When the MFA code behind the cached session `key` was checked, if
    /// the index says.
    pub fn mfa_at(&self, key: &CacheKey) -> Option<u64> {
        let name = key.entry_name();
        self.index()
            .into_iter()
            .find(|i| i.key.entry_name() == name)
            .and_then(|i| i.mfa_at)
    }

    fn lock_index(&self) -> Result<crate::lock::ProfileLock, Fail> {
        crate::lock::acquire(self.state_dir, INDEX_LOCK, INDEX_LOCK_TIMEOUT, || {})
    }

    /// Writes the index over as many pages as it needs and deletes pages
    /// left over from a longer one. Lines of sessions long expired go, with
    /// their entries.
    fn write_index(&self, mut index: Vec<Indexed>) -> Result<(), StoreError> {
        let now = crate::credentials::unix(std::time::SystemTime::now());
        let (stale, live): (Vec<_>, Vec<_>) = index
            .drain(..)
            .partition(|i| i.expiration.saturating_add(KEEP_EXPIRED) < now);
        for i in &stale {
            let _ = self.store.delete(&i.key.entry_name());
        }
        let pages = paginate(live);
        for (n, page) in pages.iter().enumerate() {
            self.store.set(&page_name(n + 1), page)?;
        }
        // Pages past the new end: delete until one is missing.
        for n in pages.len() + 1.. {
            if !self.store.delete(&page_name(n))? {
                break;
            }
        }
        Ok(())
    }
}

fn page_name(n: usize) -> String {
    if n == 1 {
        INDEX.to_owned()
    } else {
        format!("{INDEX}|{n}")
    }
}

/// Splits index lines into serialised pages, each at most `PAGE_BYTES`.
fn paginate(lines: Vec<Indexed>) -> Vec<Vec<u8>> {
    let encode = |lines: &[Indexed], more: bool| {
        serde_json::to_vec(&Page {
            lines: lines.to_vec(),
            more,
        })
        .expect("plain data serialises")
    };
    let mut pages = Vec::new();
    let mut current: Vec<Indexed> = Vec::new();
    for line in lines {
        current.push(line);
        if current.len() > 1 && encode(&current, true).len() > PAGE_BYTES {
            let last = current.pop().expect("just pushed");
            pages.push(encode(&current, true));
            current = vec![last];
        }
    }
    if !current.is_empty() {
        pages.push(encode(&current, false));
    }
    pages
}

/// Why a session or the index could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session is {bytes} bytes, more than a {store} entry holds")]
    TooLarge { store: &'static str, bytes: usize },
    #[error("{}", .0.message)]
    Lock(#[from] Fail),
}

impl SaveError {
    pub fn to_fail(&self) -> Fail {
        match self {
            SaveError::Store(e) => e.to_fail(),
            SaveError::TooLarge { .. } => Fail::new(self.to_string()).hint(
                "the session was handed out but not cached: the next call asks for a code again",
            ),
            SaveError::Lock(f) => Fail {
                message: f.message.clone(),
                hints: f.hints.clone(),
                code: f.code,
            },
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
            serial: "arn:aws:iam::111122223333:mfa/alice".into(),
            source_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            role: None,
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

    use crate::testkit::TempDir;

    fn future(n: u64) -> u64 {
        crate::credentials::unix(std::time::SystemTime::now()) + 3600 + n
    }

    #[test]
    fn save_load_index_remove() {
        let dir = TempDir::new("cache-basic");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        cache
            .save(&key("a"), &session(future(10)), Some(1))
            .unwrap();
        cache
            .save(&key("b"), &session(future(20)), Some(1))
            .unwrap();
        cache
            .save(&key("a"), &session(future(30)), Some(1))
            .unwrap();
        assert_eq!(
            cache.load(&key("a")).unwrap().unwrap().expiration,
            future(30)
        );
        assert_eq!(cache.index().len(), 2);
        assert_eq!(
            cache.known_serial("a", "AKIAIOSFODNN7EXAMPLE").as_deref(),
            Some("arn:aws:iam::111122223333:mfa/alice")
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
        let dir = TempDir::new("cache-corrupt");
        let store = MemoryStore::default();
        store
            .entries
            .borrow_mut()
            .insert(key("a").entry_name(), b"\x00garbage".to_vec());
        store
            .entries
            .borrow_mut()
            .insert("index".into(), b"not json".to_vec());
        let cache = Cache::new(&store, dir.path());
        assert!(cache.load(&key("a")).unwrap().is_none());
        assert!(cache.index().is_empty());
        cache.save(&key("a"), &session(future(5)), Some(1)).unwrap();
        assert!(cache.load(&key("a")).unwrap().is_some());
    }

    #[test]
    fn index_of_many_profiles_loses_none_and_pages_stay_under_the_limit() {
        let dir = TempDir::new("cache-many");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        for n in 0..100u64 {
            cache
                .save(&key(&format!("profile-{n}")), &session(future(n)), Some(1))
                .unwrap();
        }
        let listed = cache.index();
        assert_eq!(listed.len(), 100, "every session listed");
        let pages: Vec<(String, usize)> = store
            .entries
            .borrow()
            .iter()
            .filter(|(k, _)| k.starts_with("index"))
            .map(|(k, v)| (k.clone(), v.len()))
            .collect();
        assert!(pages.len() > 1, "split over pages: {pages:?}");
        for (name, len) in &pages {
            assert!(*len <= MAX_ENTRY_BYTES, "{name} is {len} bytes");
        }
        let gone = cache.remove(|_| true).unwrap();
        assert_eq!(gone.len(), 100, "clear --all removes every one");
        let left: Vec<String> = store.entries.borrow().keys().cloned().collect();
        assert!(left.is_empty(), "nothing left in the store: {left:?}");
    }

    #[test]
    fn shrinking_index_deletes_its_last_pages() {
        let dir = TempDir::new("cache-shrink");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        for n in 0..60u64 {
            cache
                .save(&key(&format!("p{n}")), &session(future(n)), Some(1))
                .unwrap();
        }
        cache.remove(|k| k.profile != "p7").unwrap();
        let pages: Vec<String> = store
            .entries
            .borrow()
            .keys()
            .filter(|k| k.starts_with("index"))
            .cloned()
            .collect();
        assert_eq!(pages, vec!["index".to_owned()]);
        assert_eq!(cache.index().len(), 1);
    }

    #[test]
    fn long_expired_sessions_are_dropped_with_their_entries() {
        let dir = TempDir::new("cache-expired");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        cache.save(&key("old"), &session(1_000), Some(1)).unwrap();
        cache
            .save(&key("new"), &session(future(1)), Some(1))
            .unwrap();
        let names: Vec<String> = cache.index().into_iter().map(|i| i.key.profile).collect();
        assert_eq!(names, vec!["new"]);
        assert!(
            store
                .entries
                .borrow()
                .get(&key("old").entry_name())
                .is_none()
        );
    }

    fn role_key(profile: &str, chain: &[&str]) -> CacheKey {
        CacheKey {
            profile: profile.into(),
            serial: "arn:aws:iam::111122223333:mfa/alice".into(),
            source_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            role: Some(RoleRef {
                arn: format!("arn:aws:iam::444455556666:role/{profile}"),
                chain: chain.iter().map(|c| c.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn role_sessions_have_entries_of_their_own_and_go_with_their_source() {
        let dir = TempDir::new("cache-roles");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        cache
            .save(&key("work"), &session(future(1)), Some(7))
            .unwrap();
        cache
            .save(&role_key("prod", &["work"]), &session(future(2)), Some(7))
            .unwrap();
        cache
            .save(
                &role_key("audit", &["work", "prod"]),
                &session(future(3)),
                None,
            )
            .unwrap();
        cache
            .save(&key("home"), &session(future(4)), Some(9))
            .unwrap();
        assert_eq!(
            store.entries.borrow().len(),
            5,
            "four entries and one index page"
        );
        // The serial is not part of a role entry's name: a hit needs none.
        let mut no_serial = role_key("prod", &["work"]);
        no_serial.serial.clear();
        assert!(cache.load(&no_serial).unwrap().is_some());
        assert_eq!(cache.mfa_at(&no_serial), Some(7));
        assert_eq!(cache.mfa_at(&role_key("audit", &["work", "prod"])), None);
        // A role line never stands for its profile's MFA device.
        assert_eq!(cache.known_serial("prod", "AKIAIOSFODNN7EXAMPLE"), None);
        let sources: Vec<String> = cache
            .index()
            .iter()
            .map(|i| i.key.source().to_owned())
            .collect();
        assert_eq!(sources, vec!["work", "work", "work", "home"]);
        let gone = cache.remove(|k| k.involves("work")).unwrap();
        assert_eq!(gone.len(), 3);
        assert_eq!(cache.index().len(), 1);
        assert!(cache.load(&role_key("prod", &["work"])).unwrap().is_none());
    }

    #[test]
    fn index_lines_from_before_roles_still_read() {
        let dir = TempDir::new("cache-oldindex");
        let store = MemoryStore::default();
        let exp = future(1);
        let old = format!(
            r#"{{"l":[{{"p":"work","s":"arn:aws:iam::111122223333:mfa/alice","k":"AKIAIOSFODNN7EXAMPLE","e":{exp}}}],"n":false}}"#
        );
        store
            .entries
            .borrow_mut()
            .insert("index".into(), old.into_bytes());
        let cache = Cache::new(&store, dir.path());
        let index = cache.index();
        assert_eq!(index.len(), 1);
        assert_eq!((index[0].key.role.clone(), index[0].mfa_at), (None, None));
        // And a line without a role writes as before: no new fields.
        cache.save(&key("work"), &session(exp), None).unwrap();
        let page = String::from_utf8(store.entries.borrow()["index"].clone()).unwrap();
        assert!(!page.contains("\"r\"") && !page.contains("\"m\""), "{page}");
    }

    #[test]
    fn a_session_too_large_for_the_store_says_so() {
        let dir = TempDir::new("cache-large");
        let store = MemoryStore::default();
        let cache = Cache::new(&store, dir.path());
        let mut big = session(future(1));
        big.session_token = Secret::new("A".repeat(3000));
        let e = cache.save(&key("a"), &big, Some(1)).unwrap_err();
        let f = e.to_fail();
        assert!(
            f.message.contains("bytes, more than a memory entry holds"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("not available"), "{}", f.message);
    }
}
