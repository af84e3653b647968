//! The heart: cache → lock → re-check → code → STS → store.
//!
//! Role profiles (`crate::roles`) build on the same pieces: a role session
//! comes from the source's MFA session got here, or from a code of its own.

use crate::cache::{Cache, CacheKey};
use crate::codes::{STEP, UsedCodes};
use crate::config::Settings;
use crate::credentials::{Session, unix};
use crate::error::Fail;
use crate::fail;
use crate::failure;
use crate::prompt::{Ask, CodeProvider, notify};
use crate::secret::mask_key_id;
use crate::store::CredentialStore;
use crate::sts::{Sts, StsError, check_session};
use std::time::{Duration, SystemTime};

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

/// How one step of getting a session treats the cache.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mode {
    /// The small binary has just read this cache entry and missed.
    pub after_miss: bool,
    /// Ignore this cache entry (`--refresh`).
    pub refresh: bool,
    /// A cached session counts only if the MFA code behind it was checked
    /// at or after this time (Unix seconds): for the MFA-age retry.
    pub mfa_since: Option<u64>,
}

/// A session, and what building on it needs to know.
pub(crate) struct Got {
    pub session: Session,
    /// Its cache key; the serial in it is the device behind it.
    pub key: CacheKey,
    /// When the MFA code behind it was checked, for a session got just now
    /// (a cached one's is in the index).
    pub mfa_at: Option<u64>,
}

impl Got {
    /// When the MFA code behind the session was checked, reading the index
    /// for a cached one.
    pub fn mfa_at(&self, s: &Settings, store: &dyn CredentialStore) -> Option<u64> {
        self.mfa_at
            .or_else(|| Cache::new(store, &s.state_dir).mfa_at(&self.key))
    }
}

/// Names this profile's session for `serial` and the current long-term key.
fn cache_key(s: &Settings, serial: String) -> CacheKey {
    CacheKey {
        profile: s.profile.clone(),
        serial,
        source_key_id: s.keys.cache_id().to_owned(),
        role: None,
    }
}

/// The cached session, for a source or a role profile, when it has more
/// than the refresh margin left: the whole of a cache hit, and all the
/// small front binary does before handing a miss over (see
/// `commands::front`).
pub fn cached(
    s: &Settings,
    store: &dyn CredentialStore,
    now: fn() -> SystemTime,
) -> Result<Option<Session>, Fail> {
    let mode = Mode {
        refresh: s.refresh,
        ..Mode::default()
    };
    let got = match s.roles.len() {
        0 => cached_mfa(s, store, now, mode)?,
        n => crate::roles::cached(s, n - 1, store, now, mode)?,
    };
    Ok(got.map(|g| g.session))
}

/// The source profile's cached MFA session.
pub(crate) fn cached_mfa(
    s: &Settings,
    store: &dyn CredentialStore,
    now: fn() -> SystemTime,
    mode: Mode,
) -> Result<Option<Got>, Fail> {
    if mode.refresh {
        return Ok(None);
    }
    let cache = Cache::new(store, &s.state_dir);
    let Some(serial) = s
        .mfa_serial
        .clone()
        .or_else(|| cache.known_serial(&s.profile, s.keys.cache_id()))
    else {
        crate::diag(&format!(
            "cache miss for profile {}: its MFA device is not known yet",
            s.profile
        ));
        return Ok(None);
    };
    let key = cache_key(s, serial);
    match cache.load(&key).map_err(|e| e.to_fail())? {
        Some(hit) if hit.is_fresh(now(), s.min_ttl) => {
            if !recent_enough(&cache, &key, mode, &s.profile) {
                return Ok(None);
            }
            let left = hit.seconds_left(now());
            crate::diag(&format!(
                "cache hit: {} in {}, {left} s left",
                mask_key_id(&hit.access_key_id),
                store.name()
            ));
            Ok(Some(Got {
                session: hit,
                key,
                mfa_at: None,
            }))
        }
        Some(_) => {
            crate::diag(&format!(
                "cache miss for profile {} in {}: the session is inside the refresh margin",
                s.profile,
                store.name()
            ));
            Ok(None)
        }
        None => {
            crate::diag(&format!(
                "cache miss for profile {} in {}",
                s.profile,
                store.name()
            ));
            Ok(None)
        }
    }
}

/// Whether a cached session is recent enough for `mode.mfa_since`.
pub(crate) fn recent_enough(cache: &Cache, key: &CacheKey, mode: Mode, profile: &str) -> bool {
    let Some(since) = mode.mfa_since else {
        return true;
    };
    if cache.mfa_at(key).is_some_and(|at| at >= since) {
        return true;
    }
    crate::diag(&format!(
        "the cached session of profile {profile} comes from an older MFA sign-in: a new one is needed"
    ));
    false
}

/// A fresh session for the profile asked for: from the cache when one has
/// more than the refresh margin left, else from STS. Exactly one process
/// per profile, and per MFA device, asks for a code; the others wait on
/// the lock and then read the session it stored, or report its failure.
pub fn get(s: &Settings, deps: &mut Deps) -> Result<Session, Fail> {
    let mode = Mode {
        after_miss: s.after_miss,
        refresh: s.refresh,
        mfa_since: None,
    };
    let got = match s.roles.len() {
        0 => mfa_session(s, deps, mode)?,
        n => crate::roles::get(s, n - 1, deps, mode)?,
    };
    Ok(got.session)
}

/// The source profile's MFA session (GetSessionToken).
pub(crate) fn mfa_session(s: &Settings, deps: &mut Deps, mode: Mode) -> Result<Got, Fail> {
    if !mode.after_miss
        && let Some(hit) = cached_mfa(s, deps.store, deps.now, mode)?
    {
        return Ok(hit);
    }
    let recheck = || cached_mfa(s, deps.store, deps.now, mode);
    // A holder's failure counts for us only if it came while we waited.
    let started = (deps.now)();
    let _profile_lock = match take_turn(s, &s.profile, "this profile", started, &recheck)? {
        Turn::Hit(hit) => return Ok(hit),
        Turn::Go(lock) => lock,
        Turn::Failed(left) => return Err(left.reported()),
    };
    let mut held = vec![s.profile.clone()];

    let mut provider = (deps.provider)()?;
    let sts = (deps.sts)()?;
    let serial = match &s.mfa_serial {
        Some(serial) => serial.clone(),
        None => {
            discover_serial(s, sts.as_ref()).map_err(|f| leave(s, deps, &held, &s.profile, f))?
        }
    };
    // Profiles that share a device must not send its codes at once: always
    // after the profile lock (one order, so no deadlock).
    let (_device_lock, device) = device_turn(s, deps, &serial, started, &held)?;
    held.push(device);

    let call = |code: &str| sts.get_session_token(&serial, code, s.duration);
    let to_fail = |e: &StsError| e.to_fail(Some(&serial));
    let attempt = Attempt {
        label: &s.profile,
        serial: &serial,
        what: "GetSessionToken",
        duration: s.duration,
        min_ttl: s.min_ttl,
        call: &call,
        to_fail: &to_fail,
    };
    let session = match fetch(s, &attempt, provider.as_mut(), deps) {
        Ok(session) => session,
        Err(Stop::Own(f)) => return Err(f),
        Err(Stop::Shared(f)) => return Err(leave(s, deps, &held, &s.profile, f)),
    };
    let at = unix((deps.now)());
    let key = cache_key(s, serial);
    store(s, deps, &key, &session, Some(at));
    Ok(Got {
        session,
        key,
        mfa_at: Some(at),
    })
}

/// Caches a new session. The code is spent: on failure the session is
/// handed out anyway, saying why it is not kept.
pub(crate) fn store(
    s: &Settings,
    deps: &Deps,
    key: &CacheKey,
    session: &Session,
    mfa_at: Option<u64>,
) {
    if let Err(e) = Cache::new(deps.store, &s.state_dir).save(key, session, mfa_at) {
        crate::warn_fail("the session was not cached: ", &e.to_fail());
    } else {
        crate::diag(&format!(
            "new session {} stored in {}",
            mask_key_id(&session.access_key_id),
            deps.store.name()
        ));
    }
}

/// Takes the lock of the MFA device `serial` after the locks `held`.
/// Whoever else holds it is getting a session for another profile, never
/// the one we hold the lock of, so there is nothing to read again after it.
pub(crate) fn device_turn(
    s: &Settings,
    deps: &Deps,
    serial: &str,
    started: SystemTime,
    held: &[String],
) -> Result<(crate::lock::ProfileLock, String), Fail> {
    let device = device_lock(serial);
    let what = format!("MFA device {serial}");
    match take_turn(s, &device, &what, started, &|| Ok(None))? {
        Turn::Hit(_) => unreachable!("nothing is read under a device lock"),
        Turn::Go(lock) => Ok((lock, device)),
        Turn::Failed(left) => {
            // Another profile's failure with this device: the processes
            // waiting on our locks would meet it too.
            for name in held {
                failure::record(&s.state_dir, name, &left.profile, &left.fail, (deps.now)());
            }
            Err(left.reported())
        }
    }
}

/// The lock name for an MFA device, apart from profile names.
fn device_lock(serial: &str) -> String {
    format!("device {serial}")
}

pub(crate) enum Turn {
    /// Whoever held the lock stored a session for us.
    Hit(Got),
    /// Our turn: the lock is ours and the cache still misses.
    Go(crate::lock::ProfileLock),
    /// Whoever held the lock while we waited failed in a way we would too.
    Failed(failure::Left),
}

/// Takes the lock `name` (`what` says whose, for `-v`). One that had to
/// wait reads the cache without the lock first (so many waiters read at
/// once rather than in turn), and reports the holder's failure if it left
/// one since `started`, rather than spend a code of its own on the same
/// failure.
pub(crate) fn take_turn(
    s: &Settings,
    name: &str,
    what: &str,
    started: SystemTime,
    recheck: &dyn Fn() -> Result<Option<Got>, Fail>,
) -> Result<Turn, Fail> {
    let holder_failed = || failure::since(&s.state_dir, name, started);
    let acquire = || {
        let waiting = || {
            crate::diag(&format!(
                "another stsmfa process is getting a session for {what}; waiting for it"
            ));
        };
        match crate::lock::acquire(&s.state_dir, name, s.lock_timeout, waiting) {
            Ok(lock) => Ok(Ok(lock)),
            // Giving up on a holder that failed: its failure is the news.
            Err(gave_up) => holder_failed().map(Err).ok_or(gave_up),
        }
    };
    let first = match acquire()? {
        Ok(lock) => lock,
        Err(left) => return Ok(Turn::Failed(left)),
    };
    if !first.waited {
        return Ok(match recheck()? {
            Some(hit) => Turn::Hit(hit),
            None => Turn::Go(first),
        });
    }
    drop(first);
    if let Some(hit) = recheck()? {
        return Ok(Turn::Hit(hit));
    }
    if let Some(left) = holder_failed() {
        return Ok(Turn::Failed(left));
    }
    // The holder stored nothing and left no failure (it was killed, or its
    // own code source failed): our turn, after whoever is next.
    let lock = match acquire()? {
        Ok(lock) => lock,
        Err(left) => return Ok(Turn::Failed(left)),
    };
    if let Some(hit) = recheck()? {
        return Ok(Turn::Hit(hit));
    }
    if lock.waited
        && let Some(left) = holder_failed()
    {
        return Ok(Turn::Failed(left));
    }
    Ok(Turn::Go(lock))
}

/// Leaves a failure every waiter would meet too in the locks held (of a
/// process getting a session for `profile`), and returns it.
pub(crate) fn leave(s: &Settings, deps: &Deps, held: &[String], profile: &str, f: Fail) -> Fail {
    for name in held {
        failure::record(&s.state_dir, name, profile, &f, (deps.now)());
    }
    f
}

/// How an attempt that got no session ended.
pub(crate) enum Stop {
    /// This process's own code source failed (no terminal, a code program
    /// that broke, a code already used): a waiter may well do better.
    Own(Fail),
    /// AWS's answer (or the lack of one), which any waiter would get too.
    Shared(Fail),
}

/// GetCallerIdentity + ListMFADevices: both allowed without MFA by AWS's
/// self-service policies.
pub(crate) fn discover_serial(s: &Settings, sts: &dyn Sts) -> Result<String, Fail> {
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
            crate::diag(&format!("discovered MFA device {one}"));
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

/// One call that carries an MFA code: GetSessionToken, or AssumeRole on
/// the long path.
pub(crate) struct Attempt<'a> {
    /// The profile the prompt names.
    pub label: &'a str,
    pub serial: &'a str,
    /// The call, for `-v`.
    pub what: &'a str,
    pub duration: Duration,
    pub min_ttl: Duration,
    pub call: &'a dyn Fn(&str) -> Result<Session, StsError>,
    /// AWS's failures in the user's words.
    pub to_fail: &'a dyn Fn(&StsError) -> Fail,
}

/// Gets a code (never one already spent), makes the call and checks the
/// session it returns.
pub(crate) fn fetch(
    s: &Settings,
    a: &Attempt,
    provider: &mut dyn CodeProvider,
    deps: &Deps,
) -> Result<Session, Stop> {
    let serial = a.serial;
    let used = UsedCodes::new(&s.state_dir, serial);
    let ask = Ask {
        profile: a.label,
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
        let code = provider.code(&ask, retry.as_deref()).map_err(Stop::Own)?;
        if used.is_reused(&code, (deps.now)()) {
            if provider.fixed() {
                return Err(Stop::Own(
                    fail!("this MFA code was already used, and STS accepts a code only once")
                        .hint("wait for the next code (every 30 seconds) and pass that one"),
                ));
            }
            reused += 1;
            if reused > TRIES + 2 {
                return Err(Stop::Own(
                    fail!("only codes that were already used were entered")
                        .hint("wait for your authenticator to show a new code (every 30 seconds)"),
                ));
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
        crate::diag(&format!(
            "calling {} for {serial} (try {tries} of {TRIES})",
            a.what
        ));
        let answer = (a.call)(&code).and_then(|session| {
            check_session(
                &session,
                (deps.now)(),
                least_life(a.duration, a.min_ttl),
                a.duration + CLOCK_SLACK,
            )
            .map(|()| session)
        });
        // Once the request may have reached STS the code counts as spent,
        // answered or not: sending it again could only be refused.
        if answer
            .as_ref()
            .err()
            .is_none_or(StsError::code_may_be_spent)
        {
            used.record(&code, (deps.now)());
        }
        match answer {
            Ok(session) => return Ok(session),
            Err(StsError::WrongCode(msg)) if provider.interactive() && tries < TRIES => {
                retry = Some(format!("{msg} Try again."));
            }
            Err(e) => {
                if let Some(detail) = e.detail() {
                    crate::diag(&format!("{} failed: {detail}", a.what));
                }
                let mut f = (a.to_fail)(&e);
                if e.code_may_be_spent()
                    && !matches!(
                        e,
                        StsError::WrongCode(_) | StsError::NoAnswer(_) | StsError::Interrupted(_)
                    )
                {
                    f = f.hint(
                        "the code was sent, so it counts as used: the next try takes a new one",
                    );
                }
                return Err(Stop::Shared(f));
            }
        }
    }
}

/// How far STS's clock may be ahead of ours before a session that outlasts
/// the duration asked for is refused (TOTP codes already fail far sooner).
pub(crate) const CLOCK_SLACK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The least time a new session must have left: the refresh margin, or it
/// would be a miss again at once. A session asked for no longer than the
/// margin (the user's choice, served as before) must last half of it.
pub(crate) fn least_life(duration: Duration, min_ttl: Duration) -> Duration {
    if duration > min_ttl {
        min_ttl
    } else {
        duration / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodeSource;
    use crate::credentials::{KeySource, LongTermKeys};
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
        /// What GetSessionToken fails with, if it does.
        gst_error: Option<StsError>,
        /// Spoils the session GetSessionToken returns.
        tamper: Option<fn(&mut Session)>,
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
            if let Some(e) = self.calls.borrow().gst_error.clone() {
                return Err(e);
            }
            if code != self.good {
                return Err(StsError::WrongCode(
                    "MultiFactorAuthentication failed with invalid MFA one time pass code.".into(),
                ));
            }
            let mut session = Session {
                access_key_id: format!("ASIA{}", self.calls.borrow().gst.len()),
                secret_access_key: Secret::new("sk".into()),
                session_token: Secret::new("st".into()),
                expiration: NOW + d.as_secs(),
            };
            if let Some(tamper) = self.calls.borrow().tamper {
                tamper(&mut session);
            }
            Ok(session)
        }
        fn assume_role(
            &self,
            _: crate::sts::Caller<'_>,
            _: &crate::config::Role,
        ) -> Result<Session, StsError> {
            unreachable!("source profiles assume no role")
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
            keys: KeySource::File(LongTermKeys {
                access_key_id: "AKIAWORK".into(),
                secret_access_key: Secret::new("x".into()),
            }),
            lock_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            state_dir: dir.to_owned(),
            refresh: false,
            after_miss: false,
            ykman_account: None,
            roles: Vec::new(),
        }
    }

    struct World {
        store: MemoryStore,
        calls: Rc<RefCell<Calls>>,
        asked: Rc<RefCell<usize>>,
        dir: crate::testkit::TempDir,
    }

    impl World {
        fn new(name: &str) -> World {
            let dir = crate::testkit::TempDir::new(&format!("session-{name}"));
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
    fn keys_in_the_key_store_are_cached_under_the_marker_and_hit_without_keys() {
        let w = World::new("store-keys");
        let mut s = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        s.keys = KeySource::Store;
        w.run(&s, vec!["123456"], true).unwrap();
        let names: Vec<String> = w.store.entries.borrow().keys().cloned().collect();
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(&format!("|{}", crate::credentials::KEY_STORE_MARKER))),
            "{names:?}"
        );
        // The hit needs no key at all: `cached` is all the small binary runs.
        let hit = cached(&s, &w.store, now).unwrap();
        assert!(hit.is_some());
        // Keys in the file name their own sessions: no hit from the marker's.
        let file = settings(&w.dir, Some("arn:aws:iam::1:mfa/alice"));
        assert!(cached(&file, &w.store, now).unwrap().is_none());
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

    const SERIAL: &str = "arn:aws:iam::1:mfa/alice";

    /// Holds the lock `name` in another thread (as another process would)
    /// for `hold`; `then` runs just before it lets go.
    fn hold_lock(
        dir: &std::path::Path,
        name: &str,
        hold: Duration,
        then: impl FnOnce() + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let lock = crate::lock::acquire(dir, name, Duration::from_secs(1), || {}).unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(hold);
            then();
            drop(lock);
        })
    }

    #[test]
    fn waiter_reports_the_holders_failure_instead_of_asking() {
        let w = World::new("holderfail");
        let s = settings(&w.dir, Some(SERIAL));
        let dir = w.dir.to_path_buf();
        let holder = hold_lock(&w.dir, "work", Duration::from_millis(300), move || {
            let f = fail!("AWS answered HTTP 500 (InternalFailure): try again")
                .hint("AWS had a problem on its side: try again in a minute");
            failure::record(&dir, "work", "work", &f, now() + Duration::from_millis(1));
        });
        let e = w.run(&s, vec!["123456"], false).unwrap_err();
        holder.join().unwrap();
        assert!(
            e.message.contains("another stsmfa process"),
            "{}",
            e.message
        );
        assert!(e.message.contains("HTTP 500"), "{}", e.message);
        assert!(
            e.hints.iter().any(|h| h.contains("problem on its side")),
            "the holder's hint is kept: {:?}",
            e.hints
        );
        assert_eq!(*w.asked.borrow(), 0, "no code asked");
        assert!(w.calls.borrow().gst.is_empty(), "no STS call");
    }

    #[test]
    fn holder_failure_from_before_the_wait_is_ignored() {
        let w = World::new("oldfail");
        let s = settings(&w.dir, Some(SERIAL));
        let old = fail!("AWS answered HTTP 500 (InternalFailure): try again");
        // A failure from before this process began to wait.
        let dir = w.dir.to_path_buf();
        let holder = hold_lock(&w.dir, "work", Duration::from_millis(200), move || {
            failure::record(&dir, "work", "work", &old, now() - Duration::from_secs(1));
        });
        let got = w.run(&s, vec!["123456"], false);
        holder.join().unwrap();
        assert!(got.is_ok(), "{got:?}");
        assert_eq!(w.calls.borrow().gst, vec!["123456"]);

        // A fresh record, but this process never waited: it tries itself.
        let w = World::new("oldfail2");
        let s = settings(&w.dir, Some(SERIAL));
        let f = fail!("AWS answered HTTP 500 (InternalFailure): try again");
        failure::record(&w.dir, "work", "work", &f, now() + Duration::from_secs(1));
        assert!(w.run(&s, vec!["123456"], false).is_ok());
        assert_eq!(w.calls.borrow().gst.len(), 1);
    }

    #[test]
    fn failures_from_aws_are_left_for_waiters_but_not_the_code_sources() {
        let w = World::new("leave");
        let s = settings(&w.dir, Some(SERIAL));
        w.calls.borrow_mut().gst_error = Some(StsError::Server {
            status: 500,
            code: "InternalFailure".into(),
            message: "try again".into(),
        });
        let e = w.run(&s, vec!["123456"], false).unwrap_err();
        assert!(e.message.contains("HTTP 500"), "{}", e.message);
        for lock in ["work".to_owned(), device_lock(SERIAL)] {
            let left = failure::since(&w.dir, &lock, now()).expect("recorded");
            assert_eq!(left.profile, "work");
            assert!(
                left.fail.message.starts_with("AWS answered HTTP 500"),
                "{lock}: {}",
                left.fail.message
            );
        }

        let w = World::new("leave2");
        let s = settings(&w.dir, Some(SERIAL));
        let e = w.run(&s, vec![], false).unwrap_err();
        assert!(e.message.contains("no more codes"), "{}", e.message);
        assert!(
            failure::since(&w.dir, "work", now()).is_none(),
            "a code source's failure is this process's own"
        );
    }

    #[test]
    fn profiles_sharing_a_device_wait_for_each_other() {
        let w = World::new("device");
        let s = settings(&w.dir, Some(SERIAL));
        // Another profile with this device holds the device lock.
        let holder = hold_lock(
            &w.dir,
            &device_lock(SERIAL),
            Duration::from_millis(400),
            || {},
        );
        let t0 = std::time::Instant::now();
        let got = w.run(&s, vec!["123456"], false);
        let took = t0.elapsed();
        holder.join().unwrap();
        assert!(got.is_ok(), "{got:?}");
        assert!(
            took >= Duration::from_millis(300),
            "did not wait for the device lock ({took:?})"
        );

        // And a failure the other profile left on the device is reported.
        let w = World::new("device2");
        let s = settings(&w.dir, Some(SERIAL));
        let dir = w.dir.to_path_buf();
        let holder = hold_lock(
            &w.dir,
            &device_lock(SERIAL),
            Duration::from_millis(200),
            move || {
                let f = fail!("STS rejected the MFA code: invalid MFA one time pass code");
                failure::record(&dir, &device_lock(SERIAL), "home", &f, now());
            },
        );
        let e = w.run(&s, vec!["123456"], false).unwrap_err();
        holder.join().unwrap();
        assert!(e.message.contains("profile 'home'"), "{}", e.message);
        assert!(w.calls.borrow().gst.is_empty());
        let passed =
            failure::since(&w.dir, "work", now()).expect("left for this profile's waiters");
        assert_eq!(passed.profile, "home");
        assert!(
            passed.fail.message.starts_with("STS rejected"),
            "{}",
            passed.fail.message
        );
    }

    #[test]
    fn a_code_counts_as_spent_unless_the_connection_never_opened() {
        let spent = [
            StsError::NoAnswer(30),
            StsError::Interrupted("connection reset".into()),
            StsError::Server {
                status: 500,
                code: "InternalFailure".into(),
                message: "m".into(),
            },
            StsError::Unreadable {
                status: 200,
                detail: "invalid root".into(),
            },
        ];
        for (n, e) in spent.into_iter().enumerate() {
            let w = World::new(&format!("spent{n}"));
            let s = settings(&w.dir, Some(SERIAL));
            w.calls.borrow_mut().gst_error = Some(e.clone());
            let f = w.run(&s, vec!["123456"], false).unwrap_err();
            assert_eq!(f.message, e.to_string());
            assert!(
                UsedCodes::new(&w.dir, SERIAL).is_reused("123456", now()),
                "{e:?}: the code was not recorded as spent"
            );
            // The next run never sends it again.
            w.calls.borrow_mut().gst_error = None;
            let _ = w.run(&s, vec!["123456", "123456", "222222"], false);
            assert_eq!(w.calls.borrow().gst, vec!["123456", "222222"], "{e:?}");
        }

        let w = World::new("notspent");
        let s = settings(&w.dir, Some(SERIAL));
        w.calls.borrow_mut().gst_error = Some(StsError::Network("Connection refused".into()));
        assert!(w.run(&s, vec!["123456"], false).is_err());
        assert!(!UsedCodes::new(&w.dir, SERIAL).is_reused("123456", now()));
    }

    #[test]
    fn a_timeout_says_the_code_may_be_used() {
        let w = World::new("noanswer");
        let s = settings(&w.dir, Some(SERIAL));
        w.calls.borrow_mut().gst_error = Some(StsError::NoAnswer(30));
        let e = w.run(&s, vec!["123456"], true).unwrap_err();
        assert!(
            e.message.contains("did not answer within 30 s"),
            "{}",
            e.message
        );
        assert!(e.message.contains("may have been used"), "{}", e.message);
        assert_eq!(
            w.calls.borrow().gst.len(),
            1,
            "not asked again on a terminal"
        );
    }

    #[test]
    fn invalid_sessions_are_refused_and_nothing_cached() {
        type Tamper = fn(&mut Session);
        let cases: [(&str, Tamper, &str); 14] = [
            (
                "nokey",
                |x| x.access_key_id.clear(),
                "access key ID is empty",
            ),
            (
                "nosecret",
                |x| x.secret_access_key = Secret::new(String::new()),
                "secret access key is empty",
            ),
            (
                "notoken",
                |x| x.session_token = Secret::new(String::new()),
                "session token is empty",
            ),
            (
                "akia",
                |x| x.access_key_id = "AKIAPERMANENT".into(),
                "does not start with ASIA",
            ),
            (
                "bigtoken",
                |x| x.session_token = Secret::new("t".repeat(5 * 1024 * 1024)),
                "session token is 5242880 bytes",
            ),
            (
                "bigsecret",
                |x| x.secret_access_key = Secret::new("s".repeat(257)),
                "secret access key is 257 bytes",
            ),
            (
                "bigkey",
                |x| x.access_key_id = format!("ASIA{}", "K".repeat(300)),
                "access key ID is 304 bytes",
            ),
            (
                "space",
                |x| x.secret_access_key = Secret::new("s k".into()),
                "secret access key holds characters",
            ),
            (
                "newline",
                |x| x.session_token = Secret::new("st\nhint: x".into()),
                "session token holds characters",
            ),
            (
                "unicode",
                |x| x.access_key_id = "ASIAÄ".into(),
                "access key ID holds characters",
            ),
            ("noexpiry", |x| x.expiration = 0, "no expiry"),
            ("past", |x| x.expiration = NOW - 10, "expired already"),
            ("inmargin", |x| x.expiration = NOW + 600, "expires in 600 s"),
            (
                "toolate",
                |x| x.expiration = u64::MAX,
                "later than the 7200 s",
            ),
        ];
        for (name, tamper, needle) in cases {
            let w = World::new(&format!("invalid-{name}"));
            let s = settings(&w.dir, Some(SERIAL));
            w.calls.borrow_mut().tamper = Some(tamper);
            let e = w.run(&s, vec!["123456"], false).unwrap_err();
            assert!(
                e.message.starts_with("STS returned an invalid session: "),
                "{name}: {}",
                e.message
            );
            assert!(e.message.contains(needle), "{name}: {}", e.message);
            assert!(!e.message.contains('\n'), "{name}");
            assert!(
                e.message.len() < 200,
                "{name}: a value leaked into the message"
            );
            assert!(!e.hints.is_empty(), "{name}");
            assert_eq!(w.store.writes.get(), 0, "{name}: cached");
            assert!(
                UsedCodes::new(&w.dir, SERIAL).is_reused("123456", now()),
                "{name}: STS answered, so the code is spent"
            );
        }
        // The margin's floor: a session asked for no longer than the margin
        // must last half of it.
        let w = World::new("invalid-short");
        let mut s = settings(&w.dir, Some(SERIAL));
        s.duration = Duration::from_secs(900);
        w.calls.borrow_mut().tamper = Some(|x| x.expiration = NOW + 400);
        let e = w.run(&s, vec!["123456"], false).unwrap_err();
        assert!(e.message.contains("expires in 400 s"), "{}", e.message);
    }
}
