//! The key store: the IAM user's long-term keys in a durable OS keyring
//! (Keychain, Credential Manager, Secret Service) or in an encrypted file,
//! never in a plain file and never in the kernel keyring (keyutils), whose
//! keys vanish at reboot.
//!
//! It lives here, not in the core, so that the crypto never enters the
//! small binary: a cache hit does not read it (see `KeySource`).

mod file;
pub mod index;
mod keyring;

pub use index::Index;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use stsmfa_core::config::Settings;
use stsmfa_core::credentials::LongTermKeys;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;

/// The key stores users choose with `--key-store` / `STSMFA_KEY_STORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreChoice {
    Auto,
    Keychain,
    Wincred,
    SecretService,
    File,
}

const CHOICES: &str = "auto, keychain, wincred, secret-service, file";

impl KeyStoreChoice {
    pub fn name(self) -> &'static str {
        match self {
            KeyStoreChoice::Auto => "auto",
            KeyStoreChoice::Keychain => "keychain",
            KeyStoreChoice::Wincred => "wincred",
            KeyStoreChoice::SecretService => "secret-service",
            KeyStoreChoice::File => "file",
        }
    }

    /// Parses a user's choice; `from` names where it came from.
    pub fn parse(v: &str, from: &str) -> Result<KeyStoreChoice, Fail> {
        Ok(match v.trim().to_ascii_lowercase().as_str() {
            "auto" => KeyStoreChoice::Auto,
            "keychain" => KeyStoreChoice::Keychain,
            "wincred" => KeyStoreChoice::Wincred,
            "secret-service" => KeyStoreChoice::SecretService,
            "file" => KeyStoreChoice::File,
            "keyutils" => {
                let mut f = fail!(
                    "keyutils cannot hold long-term keys ({from}): kernel keys vanish at reboot, and the persistent keyring expires after days of disuse"
                )
                .hint("use --key-store secret-service on a desktop, or --key-store file (an encrypted file) on a headless machine")
                .hint("sessions may still be cached in keyutils: --store keyutils");
                f.code = 2;
                return Err(f);
            }
            _ => {
                let mut f = fail!("invalid key store '{}' ({from})", v.trim())
                    .hint(format!("use one of: {CHOICES}"));
                f.code = 2;
                return Err(f);
            }
        })
    }
}

/// `--key-store` > `STSMFA_KEY_STORE` > auto.
pub fn choice(opt: Option<&str>) -> Result<KeyStoreChoice, Fail> {
    match (opt, stsmfa_core::real_env("STSMFA_KEY_STORE")) {
        (Some(v), _) => KeyStoreChoice::parse(v, "--key-store"),
        (None, Some(v)) => KeyStoreChoice::parse(&v, "STSMFA_KEY_STORE"),
        (None, None) => Ok(KeyStoreChoice::Auto),
    }
}

/// A profile's keys as stored: the current key and, while a rotation is
/// under way, the key it replaces (kept until AWS has deleted it).
#[derive(Debug, Clone)]
pub struct StoredKeys {
    pub current: LongTermKeys,
    pub previous: Option<LongTermKeys>,
}

impl StoredKeys {
    pub fn new(current: LongTermKeys) -> StoredKeys {
        StoredKeys {
            current,
            previous: None,
        }
    }

    /// The stored form. Never logged.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Entry::from(self)).expect("plain strings serialise")
    }

    /// `None` for anything that is not an entry of ours.
    pub fn from_bytes(bytes: &[u8]) -> Option<StoredKeys> {
        serde_json::from_slice::<Entry>(bytes)
            .ok()
            .and_then(Entry::into_keys)
    }
}

/// The serialised form: short names, a version.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Entry {
    v: u8,
    id: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    psk: Option<String>,
}

impl From<&StoredKeys> for Entry {
    fn from(k: &StoredKeys) -> Entry {
        Entry {
            v: 1,
            id: k.current.access_key_id.clone(),
            sk: k.current.secret_access_key.expose().clone(),
            pid: k.previous.as_ref().map(|p| p.access_key_id.clone()),
            psk: k
                .previous
                .as_ref()
                .map(|p| p.secret_access_key.expose().clone()),
        }
    }
}

impl Entry {
    fn into_keys(self) -> Option<StoredKeys> {
        if self.v != 1 || self.id.is_empty() || self.sk.is_empty() {
            return None;
        }
        let previous = match (self.pid, self.psk) {
            (Some(id), Some(sk)) => Some(LongTermKeys {
                access_key_id: id,
                secret_access_key: Secret::new(sk),
            }),
            _ => None,
        };
        Some(StoredKeys {
            current: LongTermKeys {
                access_key_id: self.id,
                secret_access_key: Secret::new(self.sk),
            },
            previous,
        })
    }
}

/// One key store.
pub trait KeyStore {
    /// As users name it: `secret-service`, `file`, …
    fn name(&self) -> &'static str;
    fn get(&self, profile: &str) -> Result<Option<StoredKeys>, Fail>;
    fn put(&self, profile: &str, keys: &StoredKeys) -> Result<(), Fail>;
    /// `Ok(false)` when there was nothing to delete.
    fn delete(&self, profile: &str) -> Result<bool, Fail>;
}

/// Where the key store keeps its files, and its locks.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The data directory (`STSMFA_DATA_DIR`, else the platform's data dir
    /// + `stsmfa`): the encrypted file and the index.
    pub data: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub fn real(state: PathBuf) -> Result<Dirs, Fail> {
        let data = match stsmfa_core::real_env("STSMFA_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => dirs::data_dir()
                .filter(|d| d.is_absolute())
                .map(|d| d.join("stsmfa"))
                .ok_or_else(|| {
                    fail!("no data directory is known for the key store").hint(
                        "set STSMFA_DATA_DIR to a directory of your own (stsmfa creates it with mode 0700), or set HOME",
                    )
                })?,
        };
        Ok(Dirs { data, state })
    }
}

/// Opens the chosen store; `auto` is the platform's durable keyring when it
/// works, else the encrypted file.
pub fn open(choice: KeyStoreChoice, dirs: &Dirs) -> Result<Box<dyn KeyStore>, Fail> {
    match choice {
        KeyStoreChoice::File => Ok(Box::new(file::FileStore::new(dirs.clone()))),
        KeyStoreChoice::Auto => match keyring::open_platform() {
            Some(store) => Ok(store),
            None => {
                stsmfa_core::diag("no durable keyring answers: using the encrypted file");
                Ok(Box::new(file::FileStore::new(dirs.clone())))
            }
        },
        explicit => keyring::open(explicit),
    }
}

/// Opens the store an index line names.
pub fn open_named(name: &str, dirs: &Dirs) -> Result<Box<dyn KeyStore>, Fail> {
    let choice = KeyStoreChoice::parse(name, "the key store index")?;
    if choice == KeyStoreChoice::Auto {
        return Err(fail!("the key store index names no store for a profile"));
    }
    open(choice, dirs)
}

/// The keys a profile's stored entry says, and the store they are in.
pub struct Found {
    pub keys: StoredKeys,
    pub store: Box<dyn KeyStore>,
}

/// The profile's entry in the key store, if the index lists one.
pub fn find(profile: &str, dirs: &Dirs) -> Result<Option<Found>, Fail> {
    let Some(line) = Index::load(dirs).get(profile).cloned() else {
        return Ok(None);
    };
    let store = open_named(&line.store, dirs)?;
    match store.get(profile)? {
        Some(keys) => Ok(Some(Found { keys, store })),
        None => {
            stsmfa_core::warn(&format!(
                "the key store index lists profile {profile} in {}, which has no keys for it; `stsmfa remove {profile}` tidies up",
                line.store
            ));
            Ok(None)
        }
    }
}

/// The long-term keys to call STS with, on a miss: the key store's entry
/// first, then the AWS files. `-v` says where they came from; keys in both
/// places use the store's, with one warning.
pub fn resolve(s: &Settings) -> Result<LongTermKeys, Fail> {
    let dirs = Dirs::real(s.state_dir.clone())?;
    if let Some(found) = find(&s.profile, &dirs)? {
        if s.keys.in_file().is_some() {
            stsmfa_core::warn(&format!(
                "profile {} has keys in the key store and in the AWS credentials file: using the key store's; `stsmfa import {}` removes the file's copy",
                s.profile, s.profile
            ));
        }
        stsmfa_core::diag(&format!(
            "long-term key {} of profile {} from the key store ({})",
            stsmfa_core::secret::mask_key_id(&found.keys.current.access_key_id),
            s.profile,
            found.store.name()
        ));
        return Ok(found.keys.current);
    }
    match s.keys.in_file() {
        Some(k) => {
            stsmfa_core::diag(&format!(
                "long-term key {} of profile {} from the AWS credentials or config file",
                stsmfa_core::secret::mask_key_id(&k.access_key_id),
                s.profile
            ));
            Ok(k.clone())
        }
        None => {
            let profiles = stsmfa_core::profiles::load_real()?;
            Err(stsmfa_core::config::no_keys(
                &s.profile,
                profiles.get_profile(&s.profile),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyutils_is_refused_with_the_reason() {
        let e = KeyStoreChoice::parse("keyutils", "--key-store").unwrap_err();
        assert!(e.message.contains("vanish at reboot"), "{}", e.message);
        assert_eq!(e.code, 2);
        assert!(e.hints.iter().any(|h| h.contains("--key-store file")));
        assert_eq!(
            KeyStoreChoice::parse("FILE", "x").unwrap(),
            KeyStoreChoice::File
        );
        assert!(KeyStoreChoice::parse("none", "x").is_err());
    }

    #[test]
    fn entries_round_trip_and_never_print_a_secret() {
        let k = StoredKeys {
            current: LongTermKeys {
                access_key_id: "AKIANEW".into(),
                secret_access_key: Secret::new("new-secret".into()),
            },
            previous: Some(LongTermKeys {
                access_key_id: "AKIAOLD".into(),
                secret_access_key: Secret::new("old-secret".into()),
            }),
        };
        let back = StoredKeys::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(back.current.secret_access_key.expose(), "new-secret");
        assert_eq!(back.previous.unwrap().access_key_id, "AKIAOLD");
        let debug = format!("{k:?}");
        assert!(
            !debug.contains("new-secret") && !debug.contains("old-secret"),
            "{debug}"
        );
        assert!(StoredKeys::from_bytes(b"{}").is_none());
    }
}
