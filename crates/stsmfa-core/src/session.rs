//! The heart: cache → lock → re-check → code → STS → store.

use crate::cache::{Cache, CacheKey};
use crate::codes::{STEP, UsedCodes};
use crate::config::Settings;
use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
use crate::prompt::{Ask, CodeProvider, notify};
use crate::secret::mask_key_id;
use crate::store::CredentialStore;
use crate::sts::{Sts, StsError};
use std::time::SystemTime;

/// Codes STS rejects are asked again on a terminal, 3 tries in all.
const TRIES: u32 = 3;

/// Makes the code source (first thing on a miss: with no way to ask, fail
/// before any network call).
pub type ProviderFactory<'a> = &'a mut dyn FnMut() -> Result<Box<dyn CodeProvider>, Fail>;

/// What the session logic needs from the world; real or fake.
pub struct Deps<'a> {
    pub store: &'a dyn CredentialStore,
    pub sts: &'a mut dyn FnMut() -> Result<Box<dyn Sts>, Fail>,
    pub provider: ProviderFactory<'a>,
    pub now: fn() -> SystemTime,
    /// How to wait for the next 30-second step (tests skip the sleep).
    pub sleep: fn(std::time::Duration),
}

fn diag(s: &Settings, msg: &str) {
    let _ = s;
    crate::diag(msg);
}

/// Names this profile's session for `serial` and the current long-term key.
fn cache_key(s: &Settings, serial: String) -> CacheKey {
    CacheKey {
        profile: s.profile.clone(),
        serial,
        source_key_id: s.keys.access_key_id.clone(),
    }
}

/// The cached session when it has more than the refresh margin left: the
/// whole of a cache hit, and all the small front binary does before handing
/// a miss over (see `commands::front`).
pub fn cached(
    s: &Settings,
    store: &dyn CredentialStore,
    now: fn() -> SystemTime,
) -> Result<Option<Session>, Fail> {
    if s.refresh {
        return Ok(None);
    }
    let cache = Cache::new(store, &s.state_dir);
    let Some(serial) = s
        .mfa_serial
        .clone()
        .or_else(|| cache.known_serial(&s.profile, &s.keys.access_key_id))
    else {
        diag(
            s,
            &format!(
                "cache miss for profile {}: its MFA device is not known yet",
                s.profile
            ),
        );
        return Ok(None);
    };
    match cache.load(&cache_key(s, serial)).map_err(|e| e.to_fail())? {
        Some(hit) if hit.is_fresh(now(), s.min_ttl) => {
            let left = hit.seconds_left(now());
            diag(
                s,
                &format!(
                    "cache hit: {} in {}, {left} s left",
                    mask_key_id(&hit.access_key_id),
                    store.name()
                ),
            );
            Ok(Some(hit))
        }
        Some(_) => {
            diag(
                s,
                &format!(
                    "cache miss for profile {} in {}: the session is inside the refresh margin",
                    s.profile,
                    store.name()
                ),
            );
            Ok(None)
        }
        None => {
            diag(
                s,
                &format!("cache miss for profile {} in {}", s.profile, store.name()),
            );
            Ok(None)
        }
    }
}

/// A fresh session for the profile: from the cache when one has more than
/// the refresh margin left, else from STS after asking for a code. Exactly
/// one process per profile asks; the others wait on the lock and then read.
pub fn get(s: &Settings, deps: &mut Deps) -> Result<Session, Fail> {
    if !s.after_miss
        && let Some(hit) = cached(s, deps.store, deps.now)?
    {
        return Ok(hit);
    }
    // Whoever held the lock may have just stored a session (perhaps under a
    // serial it discovered, which `cached` looks up again).
    let recheck = || cached(s, deps.store, deps.now);
    let acquire = || {
        crate::lock::acquire(&s.state_dir, &s.profile, s.lock_timeout, || {
            diag(
                s,
                "another stsmfa process is getting a session for this profile; waiting for it",
            );
        })
    };
    let first = acquire()?;
    let _lock = if first.waited {
        // Read without the lock, so many waiters read at once rather than in
        // turn; take it again only if the holder stored nothing.
        drop(first);
        if let Some(hit) = recheck()? {
            return Ok(hit);
        }
        acquire()?
    } else {
        first
    };
    if let Some(hit) = recheck()? {
        return Ok(hit);
    }

    let mut provider = (deps.provider)()?;
    let sts = (deps.sts)()?;
    let serial = match &s.mfa_serial {
        Some(serial) => serial.clone(),
        None => discover_serial(s, sts.as_ref())?,
    };
    let session = fetch(s, &serial, sts.as_ref(), provider.as_mut(), deps)?;

    if let Err(e) = Cache::new(deps.store, &s.state_dir).save(&cache_key(s, serial), &session) {
        // The code is spent: hand out the session anyway and say why it is
        // not kept.
        crate::warn_fail("the session was not cached: ", &e.to_fail());
    } else {
        diag(
            s,
            &format!(
                "new session {} stored in {}",
                mask_key_id(&session.access_key_id),
                deps.store.name()
            ),
        );
    }
    Ok(session)
}

/// GetCallerIdentity + ListMFADevices: both allowed without MFA by AWS's
/// self-service policies.
fn discover_serial(s: &Settings, sts: &dyn Sts) -> Result<String, Fail> {
    let id = sts.caller_identity().map_err(|e| e.to_fail(None))?;
    let Some(user) = id.user_name() else {
        return Err(fail!(
            "profile '{}' is not an IAM user ({}), so its MFA device cannot be looked up",
            s.profile,
            id.arn
        )
        .hint("set mfa_serial in the profile, or --mfa-serial"));
    };
    let devices = sts.list_mfa_devices(user).map_err(|e| {
        e.to_fail(None).hint(format!(
            "set mfa_serial in [profile {}] to skip the lookup",
            s.profile
        ))
    })?;
    match devices.as_slice() {
        [one] => {
            diag(s, &format!("discovered MFA device {one}"));
            Ok(one.clone())
        }
        [] => Err(fail!("IAM user {user} has no MFA device").hint(format!(
            "create one with `stsmfa enroll {}`, or in the AWS console",
            s.profile
        ))),
        many => Err(fail!(
            "IAM user {user} has {} MFA devices: {}",
            many.len(),
            many.join(", ")
        )
        .hint(format!(
            "choose one: mfa_serial = ARN in [profile {}], or --mfa-serial",
            s.profile
        ))),
    }
}

/// Gets a code (never one already spent) and calls GetSessionToken.
fn fetch(
    s: &Settings,
    serial: &str,
    sts: &dyn Sts,
    provider: &mut dyn CodeProvider,
    deps: &Deps,
) -> Result<Session, Fail> {
    let used = UsedCodes::new(&s.state_dir, serial);
    let ask = Ask {
        profile: &s.profile,
        serial,
    };
    let mut retry: Option<String> = None;
    let mut tries = 0;
    let mut reused = 0;
    loop {
        if !provider.fixed()
            && let Some(wait) = used.wait_for_next((deps.now)())
        {
            notify(&format!(
                "the MFA code of this 30-second window was already used; waiting {} s for the next one",
                wait.as_secs()
            ));
            (deps.sleep)(wait);
        }
        let code = provider.code(&ask, retry.as_deref())?;
        if used.is_reused(&code, (deps.now)()) {
            if provider.fixed() {
                return Err(fail!(
                    "this MFA code was already used, and STS accepts a code only once"
                )
                .hint("wait for the next code (every 30 seconds) and pass that one"));
            }
            reused += 1;
            if reused > TRIES + 2 {
                return Err(fail!("only codes that were already used were entered")
                    .hint("wait for your authenticator to show a new code (every 30 seconds)"));
            }
            if !provider.interactive() {
                // A program (mfa_process, ykman) shows what the clock says:
                // only the next 30-second step brings a new code.
                let now = crate::credentials::unix((deps.now)());
                let wait = (now / STEP + 1) * STEP - now;
                notify(&format!(
                    "the code program gave a code that was already used; waiting {wait} s for the next one"
                ));
                (deps.sleep)(std::time::Duration::from_secs(wait));
            }
            retry = Some("that code was already used; wait for the next one".into());
            continue;
        }
        tries += 1;
        diag(
            s,
            &format!("calling GetSessionToken for {serial} (try {tries} of {TRIES})"),
        );
        let answer = sts.get_session_token(serial, &code, s.duration);
        // A code that never reached STS is not spent.
        if !matches!(answer, Err(StsError::Network(_))) {
            used.record(&code, (deps.now)());
        }
        match answer {
            Ok(session) => return Ok(session),
            Err(StsError::WrongCode(msg)) if provider.interactive() && tries < TRIES => {
                retry = Some(format!("{msg} Try again."));
            }
            Err(e) => return Err(e.to_fail(Some(serial))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodeSource;
    use crate::credentials::LongTermKeys;
    use crate::secret::Secret;
    use crate::store::StoreChoice;
    use crate::store::memory::MemoryStore;
    use crate::sts::Identity;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: u64 = 1_800_000_000;
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[derive(Default)]
    struct Calls {
        gst: Vec<String>,
        devices: Vec<String>,
    }

    struct FakeSts {
        calls: Rc<RefCell<Calls>>,
        good: &'static str,
    }

    impl Sts for FakeSts {
        fn caller_identity(&self) -> Result<Identity, StsError> {
            Ok(Identity {
                arn: "arn:aws:iam::1:user/alice".into(),
                account: "1".into(),
            })
        }
        fn list_mfa_devices(&self, _: &str) -> Result<Vec<String>, StsError> {
            Ok(self.calls.borrow().devices.clone())
        }
        fn get_session_token(&self, _: &str, code: &str, d: Duration) -> Result<Session, StsError> {
            self.calls.borrow_mut().gst.push(code.into());
            if code != self.good {
                return Err(StsError::WrongCode(
                    "MultiFactorAuthentication failed with invalid MFA one time pass code.".into(),
                ));
            }
            Ok(Session {
                access_key_id: format!("ASIA{}", self.calls.borrow().gst.len()),
                secret_access_key: Secret::new("sk".into()),
                session_token: Secret::new("st".into()),
                expiration: NOW + d.as_secs(),
            })
        }
    }

    struct Script {
        codes: Vec<&'static str>,
        interactive: bool,
        asked: Rc<RefCell<usize>>,
    }

    impl CodeProvider for Script {
        fn code(&mut self, _: &Ask, _: Option<&str>) -> Result<String, Fail> {
            let mut n = self.asked.borrow_mut();
            *n += 1;
            self.codes
                .get(*n - 1)
                .map(|c| c.to_string())
                .ok_or_else(|| fail!("no more codes"))
        }
        fn interactive(&self) -> bool {
            self.interactive
        }
    }

    fn settings(dir: &std::path::Path, serial: Option<&str>) -> Settings {
        Settings {
            profile: "work".into(),
            mfa_serial: serial.map(str::to_owned),
            code: CodeSource::Prompt(None),
            duration: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(900),
            store: StoreChoice::None,
            region: None,
            keys: LongTermKeys {
                access_key_id: "AKIAWORK".into(),
                secret_access_key: Secret::new("x".into()),
            },
            lock_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            state_dir: dir.to_owned(),
            refresh: false,
            after_miss: false,
            ykman_account: None,
        }
    }

    struct World {
        store: MemoryStore,
        calls: Rc<RefCell<Calls>>,
        asked: Rc<RefCell<usize>>,
        dir: std::path::PathBuf,
    }

    impl Drop for World {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl World {
        fn new(name: &str) -> World {
            let dir =
                std::env::temp_dir().join(format!("stsmfa-session-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            World {
                store: MemoryStore::default(),
                calls: Default::default(),
                asked: Default::default(),
                dir,
            }
        }

        fn run(
            &self,
            s: &Settings,
            codes: Vec<&'static str>,
            interactive: bool,
        ) -> Result<Session, Fail> {
            let calls = self.calls.clone();
            *self.asked.borrow_mut() = 0;
            let asked = self.asked.clone();
            let mut sts = move || -> Result<Box<dyn Sts>, Fail> {
                Ok(Box::new(FakeSts {
                    calls: calls.clone(),
                    good: "123456",
                }))
            };
            let mut provider = move || -> Result<Box<dyn CodeProvider>, Fail> {
                Ok(Box::new(Script {
                    codes: codes.clone(),
                    interactive,
                    asked: asked.clone(),
                }))
            };
            let mut deps = Deps {
                store: &self.store,
                sts: &mut sts,
                provider: &mut provider,
                now,
                sleep: |_| {},
            };
            get(s, &mut deps)
        }
    }

    #[test]
    fn miss_then_hit() {
        let w = World::new("hit");
        let s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        let first = w.run(&s, vec!["123456"], true).unwrap();
        assert_eq!(w.calls.borrow().gst.len(), 1);
        let second = w.run(&s, vec![], true).unwrap();
        assert_eq!(first, second);
        assert_eq!(w.calls.borrow().gst.len(), 1, "no second STS call");
    }

    #[test]
    fn session_inside_margin_is_replaced_unless_margin_smaller() {
        let w = World::new("margin");
        let mut s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        s.duration = Duration::from_secs(900); // 15 minutes: inside the default margin
        w.run(&s, vec!["123456"], true).unwrap();
        std::fs::remove_dir_all(&w.dir).unwrap(); // forget the used code
        w.run(&s, vec!["123456"], true).unwrap();
        assert_eq!(w.calls.borrow().gst.len(), 2, "replaced");
        s.min_ttl = Duration::from_secs(60);
        w.run(&s, vec![], true).unwrap();
        assert_eq!(
            w.calls.borrow().gst.len(),
            2,
            "reused with a smaller margin"
        );
    }

    #[test]
    fn wrong_code_is_asked_again_on_a_terminal_and_nothing_cached() {
        let w = World::new("wrong");
        let s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        let e = w
            .run(&s, vec!["000001", "000002", "000003"], true)
            .unwrap_err();
        assert!(e.message.contains("rejected the MFA code"), "{}", e.message);
        assert_eq!(w.calls.borrow().gst.len(), 3, "three tries in all");
        assert!(w.store.entries.borrow().is_empty(), "nothing cached");
        assert_eq!(w.store.writes.get(), 0);
    }

    #[test]
    fn wrong_code_from_a_program_fails_at_once() {
        let w = World::new("wrongproc");
        let s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        assert!(w.run(&s, vec!["000001", "123456"], false).is_err());
        assert_eq!(w.calls.borrow().gst.len(), 1);
    }

    #[test]
    fn reused_code_is_never_sent() {
        let w = World::new("reuse");
        let s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        // First try is rejected; the person then types the same code again.
        let e = w.run(
            &s,
            vec!["000001", "000001", "000001", "000001", "123456"],
            true,
        );
        assert!(e.is_ok(), "{e:?}");
        let sent = w.calls.borrow().gst.clone();
        assert_eq!(
            sent,
            vec!["000001", "123456"],
            "the spent code was not sent twice"
        );
    }

    #[test]
    fn discovers_the_single_device_and_lists_several() {
        let w = World::new("discover");
        let s = settings(&w.dir, None);
        w.calls.borrow_mut().devices = vec!["arn:aws:iam::1:mfa/alice".into()];
        w.run(&s, vec!["123456"], true).unwrap();
        // A later call finds the serial in the index: a hit, no IAM call needed.
        w.calls.borrow_mut().devices = vec![];
        w.run(&s, vec![], true).unwrap();
        assert_eq!(w.calls.borrow().gst.len(), 1);

        let w = World::new("discover2");
        w.calls.borrow_mut().devices = vec!["arn:1".into(), "arn:2".into()];
        let e = w.run(&s, vec!["123456"], true).unwrap_err();
        assert!(
            e.message.contains("arn:1") && e.message.contains("arn:2"),
            "{}",
            e.message
        );
        let w = World::new("discover3");
        let e = w.run(&s, vec!["123456"], true).unwrap_err();
        assert!(e.message.contains("no MFA device"), "{}", e.message);
    }

    #[test]
    fn locked_store_is_a_clear_error() {
        let w = World::new("locked");
        w.store.locked.set(true);
        let s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        let e = w.run(&s, vec!["123456"], true).unwrap_err();
        assert!(e.message.contains("locked"), "{}", e.message);
        assert!(!e.hints.is_empty());
        assert!(w.calls.borrow().gst.is_empty(), "no code spent");
    }

    #[test]
    fn refresh_ignores_the_cache() {
        let w = World::new("refresh");
        let mut s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        w.run(&s, vec!["123456"], true).unwrap();
        std::fs::remove_dir_all(&w.dir).unwrap();
        s.refresh = true;
        w.run(&s, vec!["123456"], true).unwrap();
        assert_eq!(w.calls.borrow().gst.len(), 2);
    }
}
