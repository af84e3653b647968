//! Where sessions are cached: only OS keyrings, never a plain file.

mod auto;
mod keyring;
#[cfg(target_os = "linux")]
mod secret_service;

#[cfg(test)]
pub mod memory;

pub use auto::Auto;
pub use keyring::platform_stores;

use crate::error::Fail;
use crate::fail;

/// The stores users choose with `--store` / `STSMFA_STORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    Auto,
    Keychain,
    Wincred,
    SecretService,
    Keyutils,
    None,
    /// The in-memory store of the unit tests; not a user's choice.
    #[value(skip)]
    Memory,
}

impl StoreChoice {
    /// The name users give it with `--store`.
    pub fn name(self) -> &'static str {
        match self {
            StoreChoice::Auto => "auto",
            StoreChoice::Keychain => "keychain",
            StoreChoice::Wincred => "wincred",
            StoreChoice::SecretService => "secret-service",
            StoreChoice::Keyutils => "keyutils",
            StoreChoice::None => "none",
            StoreChoice::Memory => "memory",
        }
    }
}

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
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the {} keyring is locked", store.name())]
    Locked { store: StoreChoice },
    #[error("the {} keyring is not available: {detail}", store.name())]
    Unavailable { store: StoreChoice, detail: String },
}

impl StoreError {
    /// The store that failed, as users name it.
    pub fn store(&self) -> StoreChoice {
        match self {
            StoreError::Locked { store } | StoreError::Unavailable { store, .. } => *store,
        }
    }

    /// The one-line message and hints for users.
    pub fn to_fail(&self) -> Fail {
        match self {
            StoreError::Locked { store } => fail!("{self}")
                .hint(match store {
                    StoreChoice::SecretService => {
                        "unlock it (log in to the desktop, or `gnome-keyring-daemon --unlock` on a headless machine)"
                    }
                    StoreChoice::Keyutils => {
                        "check that this shell has a usable session keyring (`keyctl show @s`); `keyctl session -` starts one"
                    }
                    StoreChoice::Keychain => "unlock the login keychain (Keychain Access, or `security unlock-keychain`)",
                    _ => "unlock the keyring and try again",
                })
                .hint(other_stores(*store)),
            StoreError::Unavailable { store, .. } => fail!("{self}")
                .hint(match store {
                    StoreChoice::SecretService => "start a Secret Service (gnome-keyring, KeePassXC) in this D-Bus session",
                    StoreChoice::Keyutils => "check that this shell has a session keyring (`keyctl show @s`); `keyctl session -` starts one",
                    _ => "check the keyring",
                })
                .hint(other_stores(*store)),
        }
    }
}

/// The other stores of this platform, for the hint.
fn other_stores(store: StoreChoice) -> String {
    let others: Vec<&str> = keyring::platform_stores()
        .iter()
        .chain(&[StoreChoice::None])
        .filter(|s| **s != store)
        .map(|s| s.name())
        .collect();
    format!(
        "or choose another store: --store {}",
        others.join(" or --store ")
    )
}

/// Opens a durable OS keyring (not `auto` or `none`) for entries filed
/// under `service`: the key store of long-term keys uses it.
pub fn open_keyring(
    choice: StoreChoice,
    service: &'static str,
) -> Result<Box<dyn CredentialStore>, StoreError> {
    keyring::open_service(choice, service)
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

/// Opens the chosen store without warnings (the caller retries elsewhere).
pub fn open_quiet(choice: StoreChoice) -> Result<Box<dyn CredentialStore>, Fail> {
    open_with(choice, false)
}

/// Opens the chosen store. `auto` on Linux is Secret Service when a session
/// bus answers, else keyutils, else none with one warning.
pub fn open(choice: StoreChoice) -> Result<Box<dyn CredentialStore>, Fail> {
    open_with(choice, true)
}

fn open_with(choice: StoreChoice, warn: bool) -> Result<Box<dyn CredentialStore>, Fail> {
    match choice {
        StoreChoice::None => {
            if warn {
                crate::warn("store 'none': sessions are not cached, so every call asks for a code");
            }
            Ok(Box::new(NoStore))
        }
        StoreChoice::Auto => Ok(keyring::open_auto(warn)),
        explicit => keyring::open(explicit).map_err(|e| e.to_fail()),
    }
}

/// A store opened on first use. On a miss handed over by the small binary
/// (which has just read the store), `stsmfa-sts` goes straight to the lock,
/// so the Secret Service is connected to once before the lock, not twice.
pub struct Lazy {
    choice: StoreChoice,
    opened: std::cell::OnceCell<Result<Box<dyn CredentialStore>, StoreError>>,
}

impl Lazy {
    pub fn new(choice: StoreChoice) -> Lazy {
        Lazy {
            choice,
            opened: std::cell::OnceCell::new(),
        }
    }

    fn store(&self) -> Result<&dyn CredentialStore, StoreError> {
        let opened = self.opened.get_or_init(|| match self.choice {
            StoreChoice::None => {
                crate::warn("store 'none': sessions are not cached, so every call asks for a code");
                Ok(Box::new(NoStore))
            }
            StoreChoice::Auto => Ok(keyring::open_auto(true)),
            explicit => keyring::open(explicit),
        });
        match opened {
            Ok(store) => Ok(store.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl CredentialStore for Lazy {
    fn name(&self) -> &'static str {
        self.store().map_or_else(|e| e.store().name(), |s| s.name())
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store()?.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store()?.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.store()?.delete(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_store_and_hint_this_platforms_others() {
        let e = StoreError::Locked {
            store: StoreChoice::SecretService,
        };
        assert_eq!(e.to_string(), "the secret-service keyring is locked");
        let f = e.to_fail();
        let other = f.hints.last().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(
                other,
                "or choose another store: --store keyutils or --store none"
            );
        }
        assert!(!other.contains("secret-service"), "{other}");
        for kind in keyring::platform_stores() {
            let hint = other_stores(*kind);
            assert!(
                !hint.contains(&format!("--store {}", kind.name())),
                "{hint}"
            );
        }
        if !cfg!(target_os = "macos") {
            assert!(!other.contains("keychain"), "{other}");
        }
    }

    #[test]
    fn the_test_store_is_no_choice_for_users() {
        use clap::ValueEnum;
        assert!(StoreChoice::from_str("memory", true).is_err());
        assert!(StoreChoice::from_str("secret-service", true).is_ok());
    }
}
