//! Store: what `auto` picks and why, and a write, read and delete of a test
//! entry in the store sessions would go to (a locked collection or a missing
//! session keyring shows up here, with the store's own fix).

use stsmfa_core::doctor_report::{Check, Status};
use stsmfa_core::error::Fail;
use stsmfa_core::store::{CredentialStore, StoreChoice};

/// Opening stores: a seam for unit tests.
pub trait Stores {
    /// The stores `auto` tries, in order.
    fn platform(&self) -> Vec<StoreChoice>;
    fn open(&self, choice: StoreChoice) -> Result<Box<dyn CredentialStore>, Fail>;
}

pub struct RealStores;

impl Stores for RealStores {
    fn platform(&self) -> Vec<StoreChoice> {
        stsmfa_core::store::platform_stores().to_vec()
    }
    fn open(&self, choice: StoreChoice) -> Result<Box<dyn CredentialStore>, Fail> {
        stsmfa_core::store::open(choice)
    }
}

/// The test entry's name: no session is ever filed under it.
const PROBE_KEY: &str = "doctor|probe";

pub fn checks(choice: StoreChoice, stores: &dyn Stores) -> Vec<Check> {
    match choice {
        StoreChoice::None => vec![
            Check::warn(
                "store",
                "store none: sessions are not cached, so every call asks for a code",
            )
            .fix("unset STSMFA_STORE / --store to cache sessions in the OS keyring"),
        ],
        StoreChoice::Auto => auto(stores),
        explicit => vec![match round_trip(stores, explicit) {
            Ok(()) => Check::ok(
                "store",
                format!(
                    "{} (chosen): a test entry was written, read back and deleted",
                    explicit.name()
                ),
            ),
            Err(f) => Check::from_fail("store", &f),
        }],
    }
}

/// `auto` takes the first platform store that works: each one tried, then
/// which one it picks.
fn auto(stores: &dyn Stores) -> Vec<Check> {
    let mut out = Vec::new();
    // Failures of the stores auto tries before the one it picks.
    let mut before: Vec<String> = Vec::new();
    let mut picked = None;
    for choice in stores.platform() {
        match (round_trip(stores, choice), picked) {
            (Ok(()), None) => picked = Some(choice),
            (Ok(()), Some(_)) => {}
            (Err(f), None) => {
                before.push(f.message.clone());
                out.push(Check {
                    status: Status::Warn,
                    ..Check::from_fail("store", &f)
                });
            }
            // A spare after the pick: noted, nothing to fix now.
            (Err(f), Some(p)) => out.push(Check::ok(
                "store",
                format!("{} (not needed while {} works)", f.message, p.name()),
            )),
        }
    }
    let pick = match picked {
        Some(p) if before.is_empty() => Check::ok(
            "store",
            format!(
                "auto picks {}: the first of {} that works (a test entry was written, read back and deleted)",
                p.name(),
                names(stores)
            ),
        ),
        Some(p) => Check::warn(
            "store",
            format!("auto falls back to {}: {}", p.name(), before.join("; ")),
        )
        .fix("sessions are cached there; fix the store above to use it instead"),
        None => Check::fail(
            "store",
            format!(
                "no keyring works ({}): sessions are not cached, so every call asks for a code",
                before.join("; ")
            ),
        )
        .fix("fix one of the stores above, or pass --store explicitly"),
    };
    // The pick goes after the stores tried before it, before the spares.
    let at = before.len();
    out.insert(at, pick);
    out
}

fn names(stores: &dyn Stores) -> String {
    stores
        .platform()
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Write, read back and delete the test entry.
fn round_trip(stores: &dyn Stores, choice: StoreChoice) -> Result<(), Fail> {
    let store = stores.open(choice)?;
    let value = format!("stsmfa doctor {}", std::process::id());
    store
        .set(PROBE_KEY, value.as_bytes())
        .map_err(|e| e.to_fail())?;
    let back = store.get(PROBE_KEY).map_err(|e| e.to_fail());
    let deleted = store.delete(PROBE_KEY).map_err(|e| e.to_fail());
    match back? {
        Some(v) if v == value.as_bytes() => {}
        _ => {
            return Err(stsmfa_core::fail!(
                "the {} keyring did not give back the test entry it took",
                choice.name()
            )
            .hint("check the keyring daemon, or choose another --store"));
        }
    }
    if !deleted? {
        return Err(stsmfa_core::fail!(
            "the {} keyring did not delete the test entry",
            choice.name()
        )
        .hint("check the keyring daemon, or choose another --store"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use stsmfa_core::store::StoreError;

    /// A store that works, or is locked.
    struct Fake {
        kind: StoreChoice,
        locked: bool,
        items: RefCell<HashMap<String, Vec<u8>>>,
    }

    impl CredentialStore for Fake {
        fn name(&self) -> &'static str {
            self.kind.name()
        }
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            if self.locked {
                return Err(StoreError::Locked { store: self.kind });
            }
            Ok(self.items.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            if self.locked {
                return Err(StoreError::Locked { store: self.kind });
            }
            self.items.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<bool, StoreError> {
            Ok(self.items.borrow_mut().remove(key).is_some())
        }
    }

    /// Secret Service and keyutils; the ones named are locked, or absent.
    struct FakeStores {
        locked: Vec<StoreChoice>,
        absent: Vec<StoreChoice>,
    }

    impl Stores for FakeStores {
        fn platform(&self) -> Vec<StoreChoice> {
            vec![StoreChoice::SecretService, StoreChoice::Keyutils]
        }
        fn open(&self, kind: StoreChoice) -> Result<Box<dyn CredentialStore>, Fail> {
            if self.absent.contains(&kind) {
                return Err(StoreError::Unavailable {
                    store: kind,
                    detail: "no session keyring".into(),
                }
                .to_fail());
            }
            Ok(Box::new(Fake {
                kind,
                locked: self.locked.contains(&kind),
                items: RefCell::default(),
            }))
        }
    }

    fn stores(locked: &[StoreChoice], absent: &[StoreChoice]) -> FakeStores {
        FakeStores {
            locked: locked.to_vec(),
            absent: absent.to_vec(),
        }
    }

    #[test]
    fn auto_picks_the_first_store_that_works() {
        let out = checks(StoreChoice::Auto, &stores(&[], &[]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Ok);
        assert!(
            out[0].message.starts_with("auto picks secret-service"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn a_locked_collection_makes_auto_fall_back_with_a_warning() {
        let out = checks(
            StoreChoice::Auto,
            &stores(&[StoreChoice::SecretService], &[]),
        );
        assert_eq!(out[0].status, Status::Warn);
        assert!(out[0].message.contains("secret-service keyring is locked"));
        assert!(out[0].fix.iter().any(|f| f.contains("unlock")));
        assert_eq!(out[1].status, Status::Warn);
        assert!(out[1].message.starts_with("auto falls back to keyutils"));
    }

    #[test]
    fn a_locked_chosen_store_fails() {
        let out = checks(
            StoreChoice::SecretService,
            &stores(&[StoreChoice::SecretService], &[]),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Fail);
        assert!(out[0].message.contains("locked"));
    }

    #[test]
    fn a_missing_session_keyring_fails_with_keyctl_session() {
        let out = checks(
            StoreChoice::Keyutils,
            &stores(&[], &[StoreChoice::Keyutils]),
        );
        assert_eq!(out[0].status, Status::Fail);
        assert!(
            out[0].fix.iter().any(|f| f.contains("keyctl session")),
            "{:?}",
            out[0].fix
        );
    }

    #[test]
    fn nothing_working_fails_and_none_warns() {
        let all = [StoreChoice::SecretService, StoreChoice::Keyutils];
        let out = checks(StoreChoice::Auto, &stores(&all, &[]));
        assert_eq!(out.last().unwrap().status, Status::Fail);
        assert_eq!(
            checks(StoreChoice::None, &stores(&[], &[]))[0].status,
            Status::Warn
        );
    }

    #[test]
    fn a_broken_spare_store_after_the_pick_is_only_noted() {
        let out = checks(StoreChoice::Auto, &stores(&[StoreChoice::Keyutils], &[]));
        assert!(out.iter().all(|c| c.status == Status::Ok), "{out:?}");
    }
}
