//! Long-term keys in a durable OS keyring, through the core's keyring-core
//! stores, filed under their own service name so that clearing sessions
//! never touches them.

use super::{KeyStore, KeyStoreChoice, StoredKeys};
use stsmfa_core::error::Fail;
use stsmfa_core::store::{CredentialStore, StoreChoice};

/// The service long-term keys are filed under (sessions: `stsmfa`).
pub const SERVICE: &str = "stsmfa-keys";

struct Keyring {
    inner: Box<dyn CredentialStore>,
}

impl KeyStore for Keyring {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn get(&self, profile: &str) -> Result<Option<StoredKeys>, Fail> {
        Ok(self
            .inner
            .get(profile)
            .map_err(|e| e.to_fail())?
            .and_then(|b| StoredKeys::from_bytes(&b)))
    }

    fn put(&self, profile: &str, keys: &StoredKeys) -> Result<(), Fail> {
        self.inner
            .set(profile, &keys.to_bytes())
            .map_err(|e| e.to_fail())
    }

    fn delete(&self, profile: &str) -> Result<bool, Fail> {
        self.inner.delete(profile).map_err(|e| e.to_fail())
    }
}

fn core_choice(choice: KeyStoreChoice) -> StoreChoice {
    match choice {
        KeyStoreChoice::Keychain => StoreChoice::Keychain,
        KeyStoreChoice::Wincred => StoreChoice::Wincred,
        KeyStoreChoice::SecretService => StoreChoice::SecretService,
        KeyStoreChoice::Auto | KeyStoreChoice::File => unreachable!("not a keyring"),
    }
}

pub fn open(choice: KeyStoreChoice) -> Result<Box<dyn KeyStore>, Fail> {
    let inner =
        stsmfa_core::store::open_keyring(core_choice(choice), SERVICE).map_err(|e| e.to_fail())?;
    Ok(Box::new(Keyring { inner }))
}

/// The platform's durable keyring if it answers now (on Linux: a Secret
/// Service with an unlocked collection), else `None`.
pub fn open_platform() -> Option<Box<dyn KeyStore>> {
    let choice = if cfg!(target_os = "macos") {
        KeyStoreChoice::Keychain
    } else if cfg!(windows) {
        KeyStoreChoice::Wincred
    } else if cfg!(target_os = "linux") {
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || std::env::var_os("XDG_RUNTIME_DIR")
                .is_some_and(|d| std::path::Path::new(&d).join("bus").exists());
        if !bus {
            return None;
        }
        KeyStoreChoice::SecretService
    } else {
        return None;
    };
    let inner = stsmfa_core::store::open_keyring(core_choice(choice), SERVICE).ok()?;
    // A probe read: a locked collection or a bus with no Secret Service fails here.
    match inner.get("stsmfa-probe") {
        Ok(_) => Some(Box::new(Keyring { inner })),
        Err(e) => {
            stsmfa_core::diag(&format!("key store {} not used: {e}", choice.name()));
            None
        }
    }
}
