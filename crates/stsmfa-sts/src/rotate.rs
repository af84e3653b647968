//! `stsmfa rotate`: a new access key for the IAM user, then the old one
//! deleted, without ever leaving the user without a working key.
//!
//! The steps, each safe to be interrupted after:
//! 1. ListAccessKeys: the profile's key must be one of them, and the only
//!    one (IAM allows two; an unknown second key is the user's to sort out).
//! 2. CreateAccessKey, and the new key stored at once as the current one,
//!    the old kept as "previous".
//! 3. GetCallerIdentity with the new key until it works (IAM is eventually
//!    consistent), up to [`PROPAGATION`].
//! 4. DeleteAccessKey of the old key, then "previous" dropped.
//!
//! A rotation that stopped after step 2 left "previous" behind: the next
//! `rotate` finishes it (steps 3 and 4) instead of starting another.

use std::time::{Duration, Instant};
use stsmfa_core::credentials::LongTermKeys;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::mask_key_id;
use stsmfa_core::sts::{Identity, StsError};

use crate::keys::StoredKeys;

/// How long a new key may take to work everywhere.
pub const PROPAGATION: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The IAM and STS calls of a rotation (the real one calls IAM with the
/// MFA session: AWS's self-manage policy allows these only with MFA).
pub trait KeyAdmin {
    fn list_keys(&self, user: &str) -> Result<Vec<String>, StsError>;
    fn create_key(&self, user: &str) -> Result<LongTermKeys, StsError>;
    fn delete_key(&self, user: &str, id: &str) -> Result<(), StsError>;
    /// GetCallerIdentity with `keys` themselves.
    fn identity(&self, keys: &LongTermKeys) -> Result<Identity, StsError>;
}

/// Where the profile's key lives: the key store, or the AWS files.
pub trait KeyPlace {
    /// "the key store (file)", "~/.aws/credentials", for messages.
    fn describe(&self) -> String;
    fn load(&self) -> Result<StoredKeys, Fail>;
    fn save(&self, keys: &StoredKeys) -> Result<(), Fail>;
}

/// What a run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Rotated {
        old: String,
        new: String,
    },
    /// An interrupted rotation finished: the old key deleted now or earlier.
    Finished {
        old: String,
        new: String,
    },
}

pub struct Rotation<'a> {
    pub admin: &'a dyn KeyAdmin,
    pub place: &'a dyn KeyPlace,
    pub user: &'a str,
    pub sleep: &'a dyn Fn(Duration),
    pub propagation: Duration,
}

impl Rotation<'_> {
    pub fn run(&self) -> Result<Outcome, Fail> {
        let stored = self.place.load()?;
        if let Some(previous) = stored.previous.clone() {
            return self.finish(stored.current, previous);
        }
        let old = stored.current;
        let ids = self
            .admin
            .list_keys(self.user)
            .map_err(|e| e.to_fail(None))?;
        if !ids.contains(&old.access_key_id) {
            return Err(fail!(
                "the key {} in {} is not one of IAM user {}'s access keys ({})",
                mask_key_id(&old.access_key_id),
                self.place.describe(),
                self.user,
                listed(&ids)
            )
            .hint("nothing was changed; check that the profile's key is the user's"));
        }
        if let Some(other) = ids.iter().find(|i| **i != old.access_key_id) {
            return Err(fail!(
                "IAM user {} already has two access keys: {} (this profile's) and {other}, which stsmfa does not know",
                self.user,
                mask_key_id(&old.access_key_id)
            )
            .hint(format!("if {other} is not used anywhere, delete it: aws iam delete-access-key --user-name {} --access-key-id {other}", self.user))
            .hint("nothing was changed; run `stsmfa rotate` again after that"));
        }
        let new = self
            .admin
            .create_key(self.user)
            .map_err(|e| e.to_fail(None).hint("nothing was changed"))?;
        let rotating = StoredKeys {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        if let Err(f) = self.place.save(&rotating) {
            // Not stored: the new key would be lost, so it goes again.
            let undone = self.admin.delete_key(self.user, &new.access_key_id).is_ok();
            let f = f.hint(format!(
                "the old key {} is still the profile's",
                mask_key_id(&old.access_key_id)
            ));
            return Err(if undone {
                f.hint("the new key could not be stored, so it was deleted again")
            } else {
                f.hint(format!(
                    "the new key {} could not be stored nor deleted: delete it with aws iam delete-access-key --user-name {} --access-key-id {}",
                    new.access_key_id, self.user, new.access_key_id
                ))
            });
        }
        stsmfa_core::diag(&format!(
            "stored the new key {} in {}; the old {} kept until it is deleted",
            mask_key_id(&new.access_key_id),
            self.place.describe(),
            mask_key_id(&old.access_key_id)
        ));
        self.retire(new, old, false)
    }

    /// Steps 3 and 4 for a rotation that stopped after step 2.
    fn finish(&self, current: LongTermKeys, previous: LongTermKeys) -> Result<Outcome, Fail> {
        stsmfa_core::note(&format!(
            "finishing the rotation of {} to {} that was interrupted",
            mask_key_id(&previous.access_key_id),
            mask_key_id(&current.access_key_id)
        ));
        self.retire(current, previous, true)
    }

    fn retire(&self, new: LongTermKeys, old: LongTermKeys, resumed: bool) -> Result<Outcome, Fail> {
        self.wait_until_works(&new, &old)?;
        let ids = self
            .admin
            .list_keys(self.user)
            .map_err(|e| e.to_fail(None))?;
        if ids.contains(&old.access_key_id) {
            self.admin
                .delete_key(self.user, &old.access_key_id)
                .map_err(|e| {
                    e.to_fail(None).hint(format!(
                        "the new key {} is stored and works; run `stsmfa rotate` again to delete the old one",
                        mask_key_id(&new.access_key_id)
                    ))
                })?;
        }
        self.place.save(&StoredKeys::new(new.clone()))?;
        let (old, new) = (old.access_key_id, new.access_key_id);
        Ok(if resumed {
            Outcome::Finished { old, new }
        } else {
            Outcome::Rotated { old, new }
        })
    }

    fn wait_until_works(&self, new: &LongTermKeys, old: &LongTermKeys) -> Result<(), Fail> {
        let start = Instant::now();
        loop {
            match self.admin.identity(new) {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() >= self.propagation => {
                    return Err(fail!(
                        "the new key {} does not work after {} s: {}",
                        mask_key_id(&new.access_key_id),
                        self.propagation.as_secs(),
                        e
                    )
                    .hint(format!(
                        "it is stored, and the old key {} is kept and not deleted",
                        mask_key_id(&old.access_key_id)
                    ))
                    .hint("run `stsmfa rotate` again later to finish"));
                }
                Err(_) => (self.sleep)(RETRY_EVERY),
            }
        }
    }
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        "it has none".into()
    } else {
        ids.iter()
            .map(|i| mask_key_id(i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ------------------------------------------------------------ the command

use crate::aws::{AwsSts, ClientSettings};
use crate::keycmds;
use crate::keys::{self, Dirs, KeyStore};
use std::path::PathBuf;
use stsmfa_core::cli::RotateArgs;
use stsmfa_core::commands;
use stsmfa_core::profiles::{edit, keys_edit};
use stsmfa_core::secret::Secret;
use stsmfa_core::sts::Sts;

/// The key store's entry.
struct StorePlace {
    store: Box<dyn KeyStore>,
    profile: String,
    dirs: Dirs,
}

impl KeyPlace for StorePlace {
    fn describe(&self) -> String {
        format!("the key store ({})", self.store.name())
    }
    fn load(&self) -> Result<StoredKeys, Fail> {
        self.store.get(&self.profile)?.ok_or_else(|| {
            fail!(
                "profile '{}' has no keys in {}",
                self.profile,
                self.describe()
            )
        })
    }
    fn save(&self, keys: &StoredKeys) -> Result<(), Fail> {
        keycmds::store_keys(&self.dirs, self.store.as_ref(), &self.profile, keys, true)
    }
}

/// The two key lines in the credentials (or config) file; "previous" is a
/// note of the old key's ID in the state directory (no secret there).
struct FilePlace {
    profile: String,
    path: PathBuf,
    state_dir: PathBuf,
}

impl FilePlace {
    fn note_name(&self) -> String {
        format!("rotate-{}", stsmfa_core::lock::file_name(&self.profile))
    }
}

impl KeyPlace for FilePlace {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
    fn load(&self) -> Result<StoredKeys, Fail> {
        let set = stsmfa_core::profiles::load_real()?;
        let p = set.get_profile(&self.profile);
        let get = |k: &str| p.and_then(|p| p.get(k)).map(str::trim).map(str::to_owned);
        let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key"))
        else {
            return Err(stsmfa_core::config::no_keys(&self.profile, p));
        };
        let previous = stsmfa_core::statedir::read(&self.state_dir, &self.note_name())
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .filter(|old| !old.is_empty() && *old != id)
            .map(|old| LongTermKeys {
                access_key_id: old,
                secret_access_key: Secret::new(String::new()),
            });
        Ok(StoredKeys {
            current: LongTermKeys {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
            },
            previous,
        })
    }
    fn save(&self, keys: &StoredKeys) -> Result<(), Fail> {
        // The note first: a crash after it and before the file's rewrite
        // leaves a note naming the file's own key, which `load` ignores.
        if let Some(prev) = &keys.previous {
            stsmfa_core::statedir::write_atomic(
                &self.state_dir,
                &self.note_name(),
                prev.access_key_id.as_bytes(),
            )?;
        }
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| fail!("cannot read {}: {e}", self.path.display()))?;
        let (new, n) = keys_edit::replace_keys(
            &text,
            &self.profile,
            &keys.current.access_key_id,
            keys.current.secret_access_key.expose(),
        );
        if n == 0 {
            return Err(fail!(
                "{} no longer holds the key lines of profile {}",
                self.path.display(),
                self.profile
            ));
        }
        if new != text {
            // No backup: it would hold the secret.
            edit::write_atomically(&self.path, None, &new)?;
        }
        if keys.previous.is_none() {
            stsmfa_core::statedir::remove(&self.state_dir, &self.note_name());
        }
        Ok(())
    }
}

/// IAM with the MFA session; GetCallerIdentity with the keys themselves.
struct AwsAdmin {
    iam: AwsSts,
    client: ClientSettings,
}

impl KeyAdmin for AwsAdmin {
    fn list_keys(&self, user: &str) -> Result<Vec<String>, StsError> {
        self.iam.list_access_keys(user)
    }
    fn create_key(&self, user: &str) -> Result<LongTermKeys, StsError> {
        self.iam.create_access_key(user)
    }
    fn delete_key(&self, user: &str, id: &str) -> Result<(), StsError> {
        self.iam.delete_access_key(user, id)
    }
    fn identity(&self, keys: &LongTermKeys) -> Result<Identity, StsError> {
        let client = ClientSettings {
            keys: keys.clone(),
            ..self.client.clone()
        };
        AwsSts::new(&client)
            .map_err(|f| StsError::Other {
                code: "client".into(),
                message: f.message,
            })?
            .caller_identity()
    }
}

pub fn rotate(args: &RotateArgs) -> Result<u8, Fail> {
    let settings = commands::settings(&args.base)?;
    if !settings.roles.is_empty() {
        return Err(fail!(
            "'{}' is a role profile; rotate takes the profile with the long-term keys",
            settings.served_profile()
        )
        .hint(format!("stsmfa rotate {}", settings.profile)));
    }
    let profile = settings.profile.clone();
    let dirs = Dirs::real(settings.state_dir.clone())?;
    let place: Box<dyn KeyPlace> = match keys::find(&profile, &dirs)? {
        Some(found) => Box::new(StorePlace {
            store: found.store,
            profile: profile.clone(),
            dirs: dirs.clone(),
        }),
        None => match keycmds::key_file(&profile) {
            Some((path, _)) if settings.keys.in_file().is_some() => Box::new(FilePlace {
                profile: profile.clone(),
                path,
                state_dir: settings.state_dir.clone(),
            }),
            _ => {
                let set = stsmfa_core::profiles::load_real()?;
                return Err(stsmfa_core::config::no_keys(
                    &profile,
                    set.get_profile(&profile),
                ));
            }
        },
    };
    let stored = place.load()?;
    let client = ClientSettings::new(&settings, stored.current.clone());
    // Allowed without MFA; the old key still works while a rotation is unfinished.
    let who = AwsSts::new(&client)?
        .caller_identity()
        .or_else(|e| match &stored.previous {
            Some(prev) if !prev.secret_access_key.expose().is_empty() => {
                AwsSts::new(&ClientSettings {
                    keys: prev.clone(),
                    ..client.clone()
                })?
                .caller_identity()
                .map_err(|e| e.to_fail(None))
            }
            _ => Err(e.to_fail(None)),
        })?;
    let Some(user) = who.user_name().map(str::to_owned) else {
        return Err(fail!(
            "profile '{profile}' is not an IAM user ({}); only an IAM user's keys rotate",
            who.arn
        ));
    };
    let code = settings.code.clone();
    let ykman = settings.ykman_account.clone();
    let session = crate::run::obtain(&settings, &mut || {
        stsmfa_core::prompt::provider(&code, ykman.as_deref())
    })?;
    let admin = AwsAdmin {
        iam: AwsSts::for_session(&client, &session)?,
        client: client.clone(),
    };
    let outcome = Rotation {
        admin: &admin,
        place: place.as_ref(),
        user: &user,
        sleep: &std::thread::sleep,
        propagation: PROPAGATION,
    }
    .run()?;
    // Every session came from the old key (or its MFA code): they go.
    keycmds::clear_sessions(&profile, Some(settings.store));
    let (old, new, what) = match outcome {
        Outcome::Rotated { old, new } => (old, new, "rotated"),
        Outcome::Finished { old, new } => (old, new, "finished rotating"),
    };
    stsmfa_core::note(&format!(
        "{what} the key of profile {profile} (IAM user {user}): {} is in {}, {} is deleted in AWS; the cached sessions were cleared, so the next call asks for an MFA code",
        mask_key_id(&new),
        place.describe(),
        mask_key_id(&old)
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use stsmfa_core::secret::Secret;

    fn key(id: &str) -> LongTermKeys {
        LongTermKeys {
            access_key_id: id.into(),
            secret_access_key: Secret::new(format!("{id}-secret")),
        }
    }

    /// IAM as a list of keys, and a log of every call and save.
    #[derive(Default)]
    struct World {
        iam: RefCell<Vec<String>>,
        log: RefCell<Vec<String>>,
        stored: RefCell<Option<StoredKeys>>,
        /// GetCallerIdentity fails this many times for a new key.
        not_yet: Cell<u32>,
        fail_save: Cell<bool>,
        next: Cell<u32>,
    }

    impl KeyAdmin for World {
        fn list_keys(&self, _: &str) -> Result<Vec<String>, StsError> {
            self.log.borrow_mut().push("list".into());
            Ok(self.iam.borrow().clone())
        }
        fn create_key(&self, _: &str) -> Result<LongTermKeys, StsError> {
            self.next.set(self.next.get() + 1);
            let id = format!("AKIANEW{}", self.next.get());
            self.log.borrow_mut().push(format!("create {id}"));
            self.iam.borrow_mut().push(id.clone());
            Ok(key(&id))
        }
        fn delete_key(&self, _: &str, id: &str) -> Result<(), StsError> {
            self.log.borrow_mut().push(format!("delete {id}"));
            self.iam.borrow_mut().retain(|i| i != id);
            Ok(())
        }
        fn identity(&self, k: &LongTermKeys) -> Result<Identity, StsError> {
            self.log
                .borrow_mut()
                .push(format!("identity {}", k.access_key_id));
            if self.not_yet.get() > 0 {
                self.not_yet.set(self.not_yet.get() - 1);
                return Err(StsError::classify(
                    Some("InvalidClientTokenId"),
                    Some("not yet"),
                ));
            }
            Ok(Identity {
                arn: "arn:aws:iam::1:user/alice".into(),
                account: "1".into(),
            })
        }
    }

    impl KeyPlace for World {
        fn describe(&self) -> String {
            "the test store".into()
        }
        fn load(&self) -> Result<StoredKeys, Fail> {
            Ok(self.stored.borrow().clone().unwrap())
        }
        fn save(&self, k: &StoredKeys) -> Result<(), Fail> {
            if self.fail_save.get() {
                return Err(fail!("store locked"));
            }
            self.log.borrow_mut().push(format!(
                "save {} prev {}",
                k.current.access_key_id,
                k.previous.as_ref().map_or("-", |p| &p.access_key_id)
            ));
            *self.stored.borrow_mut() = Some(k.clone());
            Ok(())
        }
    }

    fn world(iam: &[&str], stored: StoredKeys) -> World {
        let w = World::default();
        *w.iam.borrow_mut() = iam.iter().map(|s| s.to_string()).collect();
        *w.stored.borrow_mut() = Some(stored);
        w
    }

    fn run(w: &World) -> Result<Outcome, Fail> {
        Rotation {
            admin: w,
            place: w,
            user: "alice",
            sleep: &|_| {},
            propagation: Duration::from_millis(50),
        }
        .run()
    }

    #[test]
    fn stores_the_new_key_before_anything_else_then_deletes_the_old() {
        let w = world(&["AKIAOLD"], StoredKeys::new(key("AKIAOLD")));
        w.not_yet.set(2);
        let out = run(&w).unwrap();
        assert_eq!(
            out,
            Outcome::Rotated {
                old: "AKIAOLD".into(),
                new: "AKIANEW1".into()
            }
        );
        assert_eq!(
            *w.log.borrow(),
            [
                "list",
                "create AKIANEW1",
                "save AKIANEW1 prev AKIAOLD",
                "identity AKIANEW1",
                "identity AKIANEW1",
                "identity AKIANEW1",
                "list",
                "delete AKIAOLD",
                "save AKIANEW1 prev -",
            ]
        );
        assert_eq!(*w.iam.borrow(), ["AKIANEW1"]);
    }

    #[test]
    fn two_keys_already_is_an_error_naming_the_unknown_one() {
        let w = world(&["AKIAOLD", "AKIAOTHER"], StoredKeys::new(key("AKIAOLD")));
        let e = run(&w).unwrap_err();
        assert!(e.message.contains("AKIAOTHER"), "{}", e.message);
        assert!(e.hints.iter().any(|h| h.contains("delete-access-key")));
        assert_eq!(*w.log.borrow(), ["list"], "nothing created");
    }

    #[test]
    fn a_key_that_is_not_the_users_changes_nothing() {
        let w = world(&["AKIASOMEONE"], StoredKeys::new(key("AKIAOLD")));
        assert!(run(&w).unwrap_err().message.contains("is not one of"));
        assert_eq!(*w.iam.borrow(), ["AKIASOMEONE"]);
    }

    #[test]
    fn an_interrupted_rotation_is_finished_by_the_next_run() {
        // Stopped after step 2: both keys in IAM, the new one stored.
        let w = world(
            &["AKIAOLD", "AKIANEW1"],
            StoredKeys {
                current: key("AKIANEW1"),
                previous: Some(key("AKIAOLD")),
            },
        );
        let out = run(&w).unwrap();
        assert!(matches!(out, Outcome::Finished { .. }));
        assert_eq!(*w.iam.borrow(), ["AKIANEW1"]);
        assert!(w.stored.borrow().as_ref().unwrap().previous.is_none());
        assert!(!w.log.borrow().iter().any(|l| l.starts_with("create")));
        // Stopped after the delete reached AWS: only "previous" goes.
        let w = world(
            &["AKIANEW1"],
            StoredKeys {
                current: key("AKIANEW1"),
                previous: Some(key("AKIAOLD")),
            },
        );
        run(&w).unwrap();
        assert!(!w.log.borrow().iter().any(|l| l.starts_with("delete")));
        assert!(w.stored.borrow().as_ref().unwrap().previous.is_none());
    }

    #[test]
    fn a_new_key_that_never_works_keeps_the_old_one() {
        let w = world(&["AKIAOLD"], StoredKeys::new(key("AKIAOLD")));
        w.not_yet.set(u32::MAX);
        let e = run(&w).unwrap_err();
        assert!(e.message.contains("does not work after"), "{}", e.message);
        assert_eq!(*w.iam.borrow(), ["AKIAOLD", "AKIANEW1"]);
        let s = w.stored.borrow().clone().unwrap();
        assert_eq!(s.current.access_key_id, "AKIANEW1");
        assert_eq!(s.previous.unwrap().access_key_id, "AKIAOLD");
        // Later it works: the next run finishes.
        w.not_yet.set(0);
        assert!(matches!(run(&w).unwrap(), Outcome::Finished { .. }));
        assert_eq!(*w.iam.borrow(), ["AKIANEW1"]);
    }

    #[test]
    fn a_new_key_that_cannot_be_stored_is_deleted_again() {
        let w = world(&["AKIAOLD"], StoredKeys::new(key("AKIAOLD")));
        w.fail_save.set(true);
        let e = run(&w).unwrap_err();
        assert!(e.hints.iter().any(|h| h.contains("deleted again")));
        assert_eq!(*w.iam.borrow(), ["AKIAOLD"]);
    }
}
