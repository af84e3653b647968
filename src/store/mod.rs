//! Where sessions are cached: only OS keyrings, never a plain file.

mod keyring;
#[cfg(test)]
pub mod memory;

#[cfg(test)]
mod tests {
    use super::memory::MemoryStore;
    use super::*;

    #[test]
    fn fallback_takes_writes_the_primary_refuses_and_serves_them_back() {
        let primary = MemoryStore::default();
        primary.locked.set(true);
        let store = Fallback::new(Box::new(primary), Box::new(MemoryStore::default()));
        store.set("k", b"v").unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(store.delete("k").unwrap());
        assert_eq!(store.get("k").unwrap_or(None), None);
    }

    #[test]
    fn fallback_prefers_the_primary() {
        let primary = MemoryStore::default();
        primary.set("k", b"p").unwrap();
        let fallback = MemoryStore::default();
        fallback.set("k", b"f").unwrap();
        let store = Fallback::new(Box::new(primary), Box::new(fallback));
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"p"[..]));
        assert_eq!(store.name(), "memory");
    }
}

use crate::cli::StoreChoice;
use crate::error::Fail;
use crate::fail;

/// The service name every entry is filed under.
pub const SERVICE: &str = "stsmfa";

/// The seam between the session logic and the OS keyrings (and an in-memory
/// store in tests).
pub trait CredentialStore {
    /// `secret-service`, `keyutils`, … as users choose it with `--store`.
    fn name(&self) -> &'static str;
    /// `Ok(None)` when there is no entry.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// `Ok(false)` when there was nothing to delete.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
}

/// Store failures the session logic branches on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the {store} keyring is locked")]
    Locked { store: &'static str },
    #[error("the {store} keyring is not available: {detail}")]
    Unavailable { store: &'static str, detail: String },
}

impl StoreError {
    /// The one-line message and hints for users.
    pub fn to_fail(&self) -> Fail {
        match self {
            StoreError::Locked { store } => fail!("{self}").hint(match *store {
                "secret-service" => "unlock it (log in to the desktop, or `gnome-keyring-daemon --unlock` on a headless machine)",
                _ => "unlock the keyring and try again",
            })
            .hint("or choose another store: --store keyutils (Linux) or --store none"),
            StoreError::Unavailable { store, .. } => fail!("{self}").hint(match *store {
                "secret-service" => "start a Secret Service (gnome-keyring, KeePassXC) in this D-Bus session, or use --store keyutils",
                "keyutils" => "run inside a login session, or `keyctl session -` for a private keyring",
                _ => "use --store none to skip caching (you will be asked for a code every time)",
            }),
        }
    }
}

/// A store that caches nothing: every call asks for a code.
pub struct NoStore;

impl CredentialStore for NoStore {
    fn name(&self) -> &'static str {
        "none"
    }
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// `auto` on Linux: the Secret Service, but a session bus whose Secret
/// Service is locked or has no collection (a headless box where D-Bus starts
/// gnome-keyring on demand) must not mean "ask every time": writes then go to
/// the kernel keyring, and reads look there after a miss.
pub struct Fallback {
    primary: Box<dyn CredentialStore>,
    fallback: Box<dyn CredentialStore>,
    used_fallback: std::cell::Cell<bool>,
}

impl Fallback {
    pub fn new(primary: Box<dyn CredentialStore>, fallback: Box<dyn CredentialStore>) -> Fallback {
        Fallback {
            primary,
            fallback,
            used_fallback: std::cell::Cell::new(false),
        }
    }
}

impl CredentialStore for Fallback {
    fn name(&self) -> &'static str {
        if self.used_fallback.get() {
            self.fallback.name()
        } else {
            self.primary.name()
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.primary.get(key) {
            Ok(Some(v)) => Ok(Some(v)),
            first => match self.fallback.get(key) {
                Ok(Some(v)) => {
                    self.used_fallback.set(true);
                    Ok(Some(v))
                }
                _ => first,
            },
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if !self.used_fallback.get() {
            match self.primary.set(key, value) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    crate::warn(&format!(
                        "{e}; caching in the {} keyring instead",
                        self.fallback.name()
                    ));
                    self.used_fallback.set(true);
                }
            }
        }
        self.fallback.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let a = self.primary.delete(key).unwrap_or(false);
        let b = self.fallback.delete(key).unwrap_or(false);
        Ok(a || b)
    }
}

/// Opens the chosen store. `auto` on Linux is Secret Service when a session
/// bus answers, else keyutils, else none with one warning.
pub fn open(choice: StoreChoice, verbose: bool) -> Result<Box<dyn CredentialStore>, Fail> {
    match choice {
        StoreChoice::None => {
            crate::warn("store 'none': sessions are not cached, so every call asks for a code");
            Ok(Box::new(NoStore))
        }
        StoreChoice::Auto => Ok(keyring::open_auto(verbose)),
        explicit => keyring::open(explicit).map_err(|e| e.to_fail()),
    }
}
