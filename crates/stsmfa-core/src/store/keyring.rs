//! OS keyrings through keyring-core: Secret Service and keyutils on Linux,
//! Keychain on macOS, Credential Manager on Windows.

use super::StoreChoice;
use super::{CredentialStore, NoStore, SERVICE, StoreError};
use keyring_core::{CredentialStore as CoreStore, Error as KError};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// A D-Bus service that never answers must not hang every AWS call.
const SECRET_SERVICE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting takes milliseconds (under a second when D-Bus first starts the
/// daemon); a bus that has not answered by then will not. Short, because a
/// miss connects twice (in `stsmfa`, then in `stsmfa-sts`).
const SECRET_SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

pub(super) struct Keyring {
    kind: StoreChoice,
    inner: Arc<CoreStore>,
    /// [`SERVICE`] for sessions; another for long-term keys, so that
    /// clearing sessions never touches them.
    service: &'static str,
}

impl Keyring {
    /// keyring-core's Secret Service store, connected within `timeout`.
    pub(super) fn open_secret_service(
        service: &'static str,
        timeout: Duration,
    ) -> Result<Keyring, StoreError> {
        let choice = StoreChoice::SecretService;
        // A bus that accepts but never answers must not hang every AWS call.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(build(choice));
        });
        let made = rx
            .recv_timeout(timeout)
            .map_err(|_| StoreError::Unavailable {
                store: choice,
                detail: format!(
                    "no answer from the session bus within {} s",
                    timeout.as_secs()
                ),
            })?;
        Keyring::made(choice, made, service)
    }

    fn made(choice: StoreChoice, made: Made, service: &'static str) -> Result<Keyring, StoreError> {
        let inner = made.map_err(|e| match e {
            KError::NoStorageAccess(_) => StoreError::Locked { store: choice },
            other => StoreError::Unavailable {
                store: choice,
                detail: other.to_string(),
            },
        })?;
        Ok(Keyring {
            kind: choice,
            inner,
            service,
        })
    }

    fn map(&self, e: KError) -> StoreError {
        match e {
            KError::NoStorageAccess(_) => StoreError::Locked { store: self.kind },
            other => StoreError::Unavailable {
                store: self.kind,
                detail: other.to_string(),
            },
        }
    }

    /// Runs one keyring call; Secret Service calls get a deadline.
    fn call<T: Send + 'static>(
        &self,
        key: &str,
        op: impl FnOnce(keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<keyring_core::Result<T>, StoreError> {
        let entry = self
            .inner
            .build(self.service, key, None)
            .map_err(|e| self.map(e))?;
        if self.kind != StoreChoice::SecretService {
            return Ok(op(entry));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(op(entry));
        });
        rx.recv_timeout(SECRET_SERVICE_TIMEOUT)
            .map_err(|_| StoreError::Unavailable {
                store: self.kind,
                detail: format!("no answer within {} s", SECRET_SERVICE_TIMEOUT.as_secs()),
            })
    }
}

impl CredentialStore for Keyring {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.call(key, |e| e.get_secret())? {
            Ok(v) => Ok(Some(v)),
            Err(KError::NoEntry) => Ok(None),
            // Unreadable data is a miss; the next write replaces it.
            Err(KError::BadEncoding(_) | KError::BadDataFormat(..)) => Ok(None),
            // Several entries under one name (a foreign tool's leftovers): a
            // miss, and `set` clears them.
            Err(KError::Ambiguous(_)) => Ok(None),
            Err(e) => Err(self.map(e)),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let v = value.to_vec();
        match self.call(key, move |e| e.set_secret(&v))? {
            Ok(()) => Ok(()),
            Err(KError::Ambiguous(dupes)) => {
                // Leftover duplicates: remove them all, then write once.
                for d in dupes {
                    let _ = d.delete_credential();
                }
                let v = value.to_vec();
                self.call(key, move |e| e.set_secret(&v))?
                    .map_err(|e| self.map(e))
            }
            Err(e) => Err(self.map(e)),
        }
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match self.call(key, |e| e.delete_credential())? {
            Ok(()) => Ok(true),
            Err(KError::NoEntry) => Ok(false),
            Err(e) => Err(self.map(e)),
        }
    }
}

/// Opens an explicitly chosen store.
pub fn open(choice: StoreChoice) -> Result<Box<dyn CredentialStore>, StoreError> {
    open_service(choice, SERVICE)
}

/// Opens an explicitly chosen store for entries filed under `service`.
pub fn open_service(
    choice: StoreChoice,
    service: &'static str,
) -> Result<Box<dyn CredentialStore>, StoreError> {
    #[cfg(target_os = "linux")]
    if choice == StoreChoice::SecretService {
        return Ok(Box::new(super::secret_service::SecretServiceStore::open(
            service,
            SECRET_SERVICE_CONNECT_TIMEOUT,
            SECRET_SERVICE_TIMEOUT,
        )?));
    }
    Ok(Box::new(Keyring::made(choice, build(choice), service)?))
}

/// The platform's store, falling back on Linux from Secret Service to
/// keyutils, and to no cache at all (with one warning) when neither works.
pub fn open_auto(warn: bool) -> Box<dyn CredentialStore> {
    let mut opened: Vec<Box<dyn CredentialStore>> = Vec::new();
    for choice in platform_order() {
        match open(*choice) {
            Ok(store) => opened.push(store),
            Err(e) if crate::verbose() => crate::diag(&format!("store {choice:?} not used: {e}")),
            Err(_) => {}
        }
    }
    if opened.is_empty() {
        if warn {
            crate::warn(
                "no keyring is available, so sessions are not cached (every call asks for a code); see README, Troubleshooting",
            );
        }
        return Box::new(NoStore);
    }
    Box::new(super::Auto::new(opened))
}

/// The platform's stores, in the order `auto` tries them.
pub fn platform_stores() -> &'static [StoreChoice] {
    if cfg!(target_os = "linux") {
        &[StoreChoice::SecretService, StoreChoice::Keyutils]
    } else {
        platform_order()
    }
}

fn platform_order() -> &'static [StoreChoice] {
    if cfg!(target_os = "linux") {
        // With no session bus address there is nothing to connect to: skip
        // the attempt rather than wait on a socket that is not there.
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || std::env::var_os("XDG_RUNTIME_DIR")
                .is_some_and(|d| std::path::Path::new(&d).join("bus").exists());
        if bus {
            &[StoreChoice::SecretService, StoreChoice::Keyutils]
        } else {
            &[StoreChoice::Keyutils]
        }
    } else if cfg!(target_os = "macos") {
        &[StoreChoice::Keychain]
    } else if cfg!(windows) {
        &[StoreChoice::Wincred]
    } else {
        &[]
    }
}

type Made = keyring_core::Result<Arc<CoreStore>>;

fn unsupported(what: &str) -> Made {
    Err(KError::NotSupportedByStore(format!(
        "{what} is not available on this platform"
    )))
}

fn build(choice: StoreChoice) -> Made {
    match choice {
        StoreChoice::SecretService => secret_service(),
        StoreChoice::Keyutils => keyutils(),
        StoreChoice::Keychain => keychain(),
        StoreChoice::Wincred => wincred(),
        StoreChoice::Auto | StoreChoice::None | StoreChoice::Memory => unsupported(choice.name()),
    }
}

#[cfg(target_os = "linux")]
fn secret_service() -> Made {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}
#[cfg(not(target_os = "linux"))]
fn secret_service() -> Made {
    unsupported("Secret Service")
}

#[cfg(target_os = "linux")]
fn keyutils() -> Made {
    Ok(linux_keyutils_keyring_store::Store::new()?)
}
#[cfg(not(target_os = "linux"))]
fn keyutils() -> Made {
    unsupported("keyutils")
}

#[cfg(target_os = "macos")]
fn keychain() -> Made {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}
#[cfg(not(target_os = "macos"))]
fn keychain() -> Made {
    unsupported("Keychain")
}

#[cfg(windows)]
fn wincred() -> Made {
    Ok(windows_native_keyring_store::Store::new()?)
}
#[cfg(not(windows))]
fn wincred() -> Made {
    unsupported("Windows Credential Manager")
}
