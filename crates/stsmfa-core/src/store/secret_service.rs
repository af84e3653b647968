//! The Secret Service store: reads through a `plain` session, writes through
//! keyring-core's store (a `dh-ietf1024-sha256-aes128-cbc-pkcs7` session).
//!
//! Why: setting up the DH session (a 1024-bit key exchange on both sides)
//! was over half of a cache hit here; a plain session skips it. What it
//! gives up: the secret crosses the user's session bus unencrypted, so a
//! `dbus-monitor` of that bus would show it. Only the same user (or root)
//! can monitor the session bus, and the same user can ask the unlocked
//! collection for the item directly, so the key exchange protects against
//! no one who could not read the secret anyway; it does keep a saved bus
//! capture from holding it, which is why writes keep it (they are rare).
//! README ("Security model") says the same.
//!
//! Anything but a plain answer (a locked item, duplicates, a daemon that
//! refuses plain sessions) is read again through keyring-core, which handles
//! it as before.

use super::keyring::Keyring;
use super::{CredentialStore, StoreChoice, StoreError};
use secret_service::EncryptionType;
use secret_service::blocking::SecretService;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

pub(super) struct SecretServiceStore {
    /// The `service` attribute of the entries (sessions or long-term keys).
    service: &'static str,
    plain: Option<Arc<SecretService<'static>>>,
    keyring: OnceLock<Result<Keyring, StoreError>>,
    call_timeout: Duration,
    connect_timeout: Duration,
}

/// What a plain lookup found.
enum Plain {
    One(Vec<u8>),
    Nothing,
    /// Locked, several, or an error: ask keyring-core.
    Unsure,
}

impl SecretServiceStore {
    /// Connects with a plain session; `Unavailable` when the bus or the
    /// service does not answer within `connect_timeout`.
    pub(super) fn open(
        service: &'static str,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<SecretServiceStore, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(SecretService::connect(EncryptionType::Plain));
        });
        let unavailable = |detail: String| StoreError::Unavailable {
            store: StoreChoice::SecretService,
            detail,
        };
        let store = |plain| SecretServiceStore {
            service,
            plain,
            keyring: OnceLock::new(),
            call_timeout,
            connect_timeout,
        };
        match rx.recv_timeout(connect_timeout) {
            Ok(Ok(ss)) => Ok(store(Some(Arc::new(ss)))),
            // A quick refusal: keyring-core's own connection says what is
            // wrong as it always has (locked, no service), or works with DH.
            Ok(Err(_)) => {
                let fallback = store(None);
                fallback.keyring()?;
                Ok(fallback)
            }
            Err(_) => Err(unavailable(format!(
                "no answer from the session bus within {} s",
                connect_timeout.as_secs()
            ))),
        }
    }

    fn keyring(&self) -> Result<&Keyring, StoreError> {
        self.keyring
            .get_or_init(|| Keyring::open_secret_service(self.service, self.connect_timeout))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn plain_get(&self, key: &str) -> Result<Plain, StoreError> {
        let Some(ss) = self.plain.clone() else {
            return Ok(Plain::Unsure);
        };
        let key = key.to_owned();
        let service = self.service;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let found = ss.search_items(HashMap::from([
                ("service", service),
                ("username", key.as_str()),
            ]));
            let answer = match found {
                Ok(r) if r.unlocked.is_empty() && r.locked.is_empty() => Plain::Nothing,
                Ok(r) if r.unlocked.len() == 1 && r.locked.is_empty() => {
                    match r.unlocked[0].get_secret() {
                        Ok(secret) => Plain::One(secret),
                        Err(_) => Plain::Unsure,
                    }
                }
                _ => Plain::Unsure,
            };
            let _ = tx.send(answer);
        });
        rx.recv_timeout(self.call_timeout)
            .map_err(|_| StoreError::Unavailable {
                store: StoreChoice::SecretService,
                detail: format!("no answer within {} s", self.call_timeout.as_secs()),
            })
    }
}

impl CredentialStore for SecretServiceStore {
    fn name(&self) -> &'static str {
        StoreChoice::SecretService.name()
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.plain_get(key)? {
            Plain::One(secret) => Ok(Some(secret)),
            Plain::Nothing => Ok(None),
            Plain::Unsure => self.keyring()?.get(key),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.keyring()?.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.keyring()?.delete(key)
    }
}
