//! Which profiles have keys in the key store, in which store, and when they
//! were added or rotated: a small file in the data directory, no secret in
//! it (the key ID masked). It lets a miss for a profile whose keys are in
//! the AWS files skip the key store (no passphrase asked), and `list` work
//! on stores that cannot be searched.

use super::Dirs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use stsmfa_core::error::Fail;

const FILE: &str = "keys-index.json";
/// The lock every read-modify-write of the key store and its index takes.
pub const LOCK: &str = "\0keys";
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    /// Masked: `AKIA…WXYZ`.
    pub key: String,
    pub store: String,
    pub added: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    pub profiles: BTreeMap<String, Line>,
}

impl Index {
    /// The index; none (or an unreadable one) is empty.
    pub fn load(dirs: &Dirs) -> Index {
        stsmfa_core::statedir::read(&dirs.data, FILE)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, profile: &str) -> Option<&Line> {
        self.profiles.get(profile)
    }

    pub fn save(&self, dirs: &Dirs) -> Result<(), Fail> {
        let bytes = serde_json::to_vec_pretty(self).expect("plain data serialises");
        stsmfa_core::statedir::write_atomic(&dirs.data, FILE, &bytes)
    }
}

/// Takes the key store's lock (held across a store write and the index's).
pub fn lock(dirs: &Dirs) -> Result<stsmfa_core::lock::ProfileLock, Fail> {
    stsmfa_core::lock::acquire(&dirs.state, LOCK, LOCK_TIMEOUT, || {
        stsmfa_core::diag("another stsmfa process is writing the key store; waiting for it");
    })
}

/// Notes (or updates) a profile's line, under the lock the caller holds.
pub fn record(
    dirs: &Dirs,
    profile: &str,
    line: impl FnOnce(Option<&Line>) -> Line,
) -> Result<(), Fail> {
    let mut index = Index::load(dirs);
    let new = line(index.get(profile));
    index.profiles.insert(profile.to_owned(), new);
    index.save(dirs)
}

/// Drops a profile's line, under the lock the caller holds.
pub fn forget(dirs: &Dirs, profile: &str) -> Result<bool, Fail> {
    let mut index = Index::load(dirs);
    let had = index.profiles.remove(profile).is_some();
    if had {
        index.save(dirs)?;
    }
    Ok(had)
}
