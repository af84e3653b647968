//! Role profiles: one MFA code for every role.
//!
//! The default path assumes a role with the source profile's MFA session
//! (cached and locked as `session` does it, so one code serves every role),
//! and a chain of role profiles with the session of the role before. AWS
//! caps such role sessions at one hour; a role asked for longer is the
//! long path: AssumeRole with the long-term keys and an MFA code of its own.
//!
//! Locks are always taken from the role asked for down to the MFA device
//! (role, role before, source profile, device), so no two processes can
//! wait for each other.

use crate::cache::{Cache, CacheKey, RoleRef};
use crate::config::{CHAINING_LIMIT, Role, Settings};
use crate::credentials::unix;
use crate::error::Fail;
use crate::fail;
use crate::secret::mask_key_id;
use crate::session::{self, Attempt, Deps, Got, Mode, Stop, Turn};
use crate::store::CredentialStore;
use crate::sts::{Caller, StsError, check_session};
use std::time::SystemTime;

/// A denied AssumeRole with an MFA session older than this gets one more
/// try with a new MFA session: the trust policy may limit
/// `aws:MultiFactorAuthAge`, which counts from the original sign-in.
pub const RETRY_AGE: u64 = 300;

/// Names the session of role `n` of the chain.
fn key(s: &Settings, n: usize, serial: String) -> CacheKey {
    let mut chain = vec![s.profile.clone()];
    chain.extend(s.roles[..n].iter().map(|r| r.profile.clone()));
    CacheKey {
        profile: s.roles[n].profile.clone(),
        serial,
        source_key_id: s.keys.cache_id().to_owned(),
        role: Some(RoleRef {
            arn: s.roles[n].arn.clone(),
            chain,
        }),
    }
}

/// The lock of a role profile (no profile name holds a space).
pub(crate) fn lock_name(role: &Role) -> String {
    format!("role {}", role.profile)
}

/// The cached session of role `n` when it has more than its refresh margin
/// left: one store read, no index, no device needed.
pub(crate) fn cached(
    s: &Settings,
    n: usize,
    store: &dyn CredentialStore,
    now: fn() -> SystemTime,
    mode: Mode,
) -> Result<Option<Got>, Fail> {
    if mode.refresh {
        return Ok(None);
    }
    let role = &s.roles[n];
    let key = key(s, n, s.mfa_serial.clone().unwrap_or_default());
    let cache = Cache::new(store, &s.state_dir);
    match cache.load(&key).map_err(|e| e.to_fail())? {
        Some(hit) if hit.is_fresh(now(), role.min_ttl) => {
            if !session::recent_enough(&cache, &key, mode, &role.profile) {
                return Ok(None);
            }
            crate::diag(&format!(
                "cache hit: role profile {} ({}): {} in {}, {} s left",
                role.profile,
                role.arn,
                mask_key_id(&hit.access_key_id),
                store.name(),
                hit.seconds_left(now())
            ));
            Ok(Some(Got {
                session: hit,
                key,
                mfa_at: None,
            }))
        }
        Some(_) => {
            crate::diag(&format!(
                "cache miss for role profile {} in {}: the session is inside the refresh margin",
                role.profile,
                store.name()
            ));
            Ok(None)
        }
        None => {
            crate::diag(&format!(
                "cache miss for role profile {} in {}",
                role.profile,
                store.name()
            ));
            Ok(None)
        }
    }
}

/// The session of role `n` of the chain: cached, or assumed now.
pub(crate) fn get(s: &Settings, n: usize, deps: &mut Deps, mode: Mode) -> Result<Got, Fail> {
    let role = &s.roles[n];
    if !mode.after_miss
        && let Some(hit) = cached(s, n, deps.store, deps.now, mode)?
    {
        return Ok(hit);
    }
    let started = (deps.now)();
    let lock = lock_name(role);
    let what = format!("role profile {}", role.profile);
    let recheck = || cached(s, n, deps.store, deps.now, mode);
    let _lock = match session::take_turn(s, &lock, &what, started, &recheck)? {
        Turn::Hit(hit) => return Ok(hit),
        Turn::Go(lock) => lock,
        Turn::Failed(left) => return Err(left.reported()),
    };
    if n == 0 && role.long() {
        return long_path(s, deps, started, lock);
    }
    crate::diag(&match n {
        0 => format!(
            "role profile {}: default path: AssumeRole of {} with the MFA session of profile {} (no code needed; {} s is within the 1 hour AWS allows roles assumed with a session)",
            role.profile,
            role.arn,
            s.profile,
            role.duration.as_secs()
        ),
        _ => format!(
            "role profile {}: default path: AssumeRole of {} with the session of role profile {} (role chaining, at most 1 hour)",
            role.profile,
            role.arn,
            s.roles[n - 1].profile
        ),
    });
    let sts = (deps.sts)()?;
    // What came before in the chain: the MFA session, or the role before.
    let parent = |deps: &mut Deps, mode: Mode| match n {
        0 => session::mfa_session(s, deps, mode),
        _ => get(s, n - 1, deps, mode),
    };
    let down = Mode {
        mfa_since: mode.mfa_since,
        ..Mode::default()
    };
    let mut from = parent(deps, down)?;
    let mut first_age: Option<Option<u64>> = None;
    loop {
        let answer = sts
            .assume_role(Caller::Session(&from.session), role)
            .and_then(|new| {
                check_session(
                    &new,
                    (deps.now)(),
                    session::least_life(role.duration, role.min_ttl),
                    role.duration + session::CLOCK_SLACK,
                )
                .map(|()| new)
            });
        let now = unix((deps.now)());
        match answer {
            Ok(new) => {
                let mfa_at = from.mfa_at(s, deps.store);
                let serial = from.key.serial.clone();
                let key = key(s, n, serial);
                session::store(s, deps, &key, &new, mfa_at);
                return Ok(Got {
                    session: new,
                    key,
                    mfa_at,
                });
            }
            Err(StsError::Denied(msg)) => {
                let age = from.mfa_at(s, deps.store).map(|at| now.saturating_sub(at));
                if first_age.is_none() && age.is_none_or(|a| a > RETRY_AGE) {
                    crate::note(&format!(
                        "AssumeRole of {} was denied with an MFA session {} old; the role's trust policy may limit the MFA age: getting a new MFA session",
                        role.arn,
                        age_text(age)
                    ));
                    first_age = Some(age);
                    let fresh = Mode {
                        mfa_since: Some(now.saturating_sub(RETRY_AGE)),
                        ..Mode::default()
                    };
                    from = parent(deps, fresh)?;
                    continue;
                }
                let f = denied(s, n, &msg, age, first_age);
                return Err(session::leave(s, deps, &[lock], &role.profile, f));
            }
            Err(e) => {
                if let Some(detail) = e.detail() {
                    crate::diag(&format!("AssumeRole failed: {detail}"));
                }
                let f = role_fail(s, n, &e);
                return Err(session::leave(s, deps, &[lock], &role.profile, f));
            }
        }
    }
}

/// The long path: AssumeRole with the long-term keys and an MFA code, for a
/// role session longer than the 1 hour a session-assumed role may last.
fn long_path(
    s: &Settings,
    deps: &mut Deps,
    started: SystemTime,
    lock: String,
) -> Result<Got, Fail> {
    let role = &s.roles[0];
    crate::diag(&format!(
        "role profile {}: long path: {} s is more than the 1 hour AWS allows a role assumed with a session, so AssumeRole of {} with the long-term keys of profile {} and an MFA code",
        role.profile,
        role.duration.as_secs(),
        role.arn,
        s.profile
    ));
    let mut held = vec![lock];
    let mut provider = (deps.provider)()?;
    let sts = (deps.sts)()?;
    let serial = match s.mfa_serial.clone().or_else(|| {
        Cache::new(deps.store, &s.state_dir).known_serial(&s.profile, s.keys.cache_id())
    }) {
        Some(serial) => serial,
        None => session::discover_serial(s, sts.as_ref())
            .map_err(|f| session::leave(s, deps, &held, &role.profile, f))?,
    };
    let (_device_lock, device) = session::device_turn(s, deps, &serial, started, &held)?;
    held.push(device);
    let call = |code: &str| {
        sts.assume_role(
            Caller::Mfa {
                serial: &serial,
                code,
            },
            role,
        )
    };
    let to_fail = |e: &StsError| role_fail(s, 0, e);
    let what = format!("AssumeRole of {}", role.arn);
    let attempt = Attempt {
        label: &role.profile,
        serial: &serial,
        what: &what,
        duration: role.duration,
        min_ttl: role.min_ttl,
        call: &call,
        to_fail: &to_fail,
    };
    let new = match session::fetch(s, &attempt, provider.as_mut(), deps) {
        Ok(new) => new,
        Err(Stop::Own(f)) => return Err(f),
        Err(Stop::Shared(f)) => return Err(session::leave(s, deps, &held, &role.profile, f)),
    };
    let at = unix((deps.now)());
    let key = key(s, 0, serial);
    session::store(s, deps, &key, &new, Some(at));
    Ok(Got {
        session: new,
        key,
        mfa_at: Some(at),
    })
}

fn age_text(age: Option<u64>) -> String {
    match age {
        Some(a) => format!("{a} s"),
        None => "of unknown age".to_owned(),
    }
}

/// Whose credentials assumed role `n`, for messages.
fn caller(s: &Settings, n: usize) -> String {
    match n {
        0 => format!("the MFA session of profile {}", s.profile),
        _ => format!("the session of role profile {}", s.roles[n - 1].profile),
    }
}

/// AssumeRole denied: AWS answers alike whether the role is missing, its
/// trust policy names someone else, the external ID is wrong or the MFA is
/// too old, so the hints cover each. `first_age` is set when this was the
/// try with a new MFA session.
fn denied(
    s: &Settings,
    n: usize,
    msg: &str,
    age: Option<u64>,
    first_age: Option<Option<u64>>,
) -> Fail {
    let role = &s.roles[n];
    let p = &role.profile;
    let mut f = match first_age {
        Some(old) => fail!(
            "AWS denied AssumeRole of {} (profile {p}) even with a new MFA session ({} old; the first try's was {}): {msg}",
            role.arn,
            age_text(age),
            age_text(old)
        ),
        None => fail!(
            "AWS denied AssumeRole of {} (profile {p}) with {} (MFA {} old): {msg}",
            role.arn,
            caller(s, n),
            age_text(age)
        ),
    };
    f = f.hint(format!(
        "the role does not exist, or its trust policy does not let this user assume it: check role_arn in [profile {p}]"
    ));
    f = match &role.external_id {
        Some(_) => f.hint(format!(
            "check external_id in [profile {p}]: it must be the one the trust policy names (sts:ExternalId)"
        )),
        None => f.hint(format!(
            "if the trust policy asks for an external ID (sts:ExternalId), set external_id in [profile {p}]"
        )),
    };
    f.hint("ask the role's admin to check its trust policy: the Principal (this user or account), aws:MultiFactorAuthPresent and aws:MultiFactorAuthAge (stsmfa's MFA session counts from its sign-in), sts:ExternalId")
}

/// AssumeRole's other failures, each with its own hint.
fn role_fail(s: &Settings, n: usize, e: &StsError) -> Fail {
    let role = &s.roles[n];
    let p = &role.profile;
    match e {
        StsError::Denied(msg) => denied(s, n, msg, None, None),
        StsError::Invalid(msg) if msg.contains("MaxSessionDuration") => fail!(
            "role {} allows no session as long as the {} s profile {p} asks for: {msg}",
            role.arn,
            role.duration.as_secs()
        )
        .hint(format!(
            "lower duration_seconds in [profile {p}] (3600, the default, is what every role allows)"
        ))
        .hint("or ask the role's admin to raise its MaxSessionDuration (at most 12 hours)"),
        StsError::Invalid(msg) if msg.contains("role chaining") => fail!(
            "AWS caps role profile {p} at 1 hour, as it is assumed with session credentials: {msg}"
        )
        .hint(format!(
            "set duration_seconds = {CHAINING_LIMIT} or less in [profile {p}]"
        )),
        StsError::Invalid(msg) => fail!("AWS rejected AssumeRole of {} (profile {p}): {msg}", role.arn)
            .hint(format!(
                "check role_arn, role_session_name, external_id, source_identity and duration_seconds in [profile {p}]"
            )),
        StsError::InvalidKey(_) | StsError::ExpiredKey(_) if n > 0 || !role.long() => {
            fail!("AWS refused {} for AssumeRole of {}: {e}", caller(s, n), role.arn).hint(format!(
                "run `stsmfa clear {}` and try again: stsmfa then gets a new session",
                s.profile
            ))
        }
        StsError::Network(_)
        | StsError::Interrupted(_)
        | StsError::Timeout(_)
        | StsError::NoAnswer(_)
        | StsError::RegionDisabled(_) => e.to_fail(s.mfa_serial.as_deref()).hint(format!(
            "STS region used: {} (region in [profile {p}], AWS_REGION or --region)",
            s.region.as_deref().unwrap_or("the SDK's default")
        )),
        other => {
            let f = other.to_fail(s.mfa_serial.as_deref());
            Fail {
                message: format!("AssumeRole of {} (profile {p}): {}", role.arn, f.message),
                ..f
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodeSource;
    use crate::credentials::{KeySource, LongTermKeys, Session};
    use crate::prompt::{Ask, CodeProvider};
    use crate::secret::Secret;
    use crate::store::StoreChoice;
    use crate::store::memory::MemoryStore;
    use crate::sts::{Identity, Sts};
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: u64 = 1_800_000_000;
    const SERIAL: &str = "arn:aws:iam::111122223333:mfa/alice";
    const CODE: &str = "123456";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    /// Who called what, in order.
    #[derive(Default)]
    struct Calls {
        gst: usize,
        /// (role ARN, the caller's key ID or "code:CODE").
        assume: Vec<(String, String)>,
        /// AssumeRole is denied for callers whose key is listed here.
        deny_keys: Vec<String>,
        /// AssumeRole is denied whatever the caller.
        deny_all: bool,
        minted: usize,
    }

    struct FakeSts(Rc<RefCell<Calls>>);

    impl FakeSts {
        fn mint(&self, secs: u64) -> Session {
            let mut c = self.0.borrow_mut();
            c.minted += 1;
            Session {
                access_key_id: format!("ASIA{}", c.minted),
                secret_access_key: Secret::new("sk".into()),
                session_token: Secret::new("st".into()),
                expiration: NOW + secs,
            }
        }
    }

    impl Sts for FakeSts {
        fn caller_identity(&self) -> Result<Identity, StsError> {
            unreachable!("mfa_serial is set")
        }
        fn list_mfa_devices(&self, _: &str) -> Result<Vec<String>, StsError> {
            unreachable!("mfa_serial is set")
        }
        fn get_session_token(&self, _: &str, code: &str, d: Duration) -> Result<Session, StsError> {
            assert_eq!(code, CODE);
            self.0.borrow_mut().gst += 1;
            Ok(self.mint(d.as_secs()))
        }
        fn assume_role(&self, caller: Caller<'_>, role: &Role) -> Result<Session, StsError> {
            let who = match caller {
                Caller::Session(s) => s.access_key_id.clone(),
                Caller::Mfa { code, .. } => format!("code:{code}"),
            };
            let denied = {
                let c = self.0.borrow();
                c.deny_all || c.deny_keys.contains(&who)
            };
            self.0.borrow_mut().assume.push((role.arn.clone(), who));
            if denied {
                return Err(StsError::Denied(format!(
                    "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: sts:AssumeRole on resource: {}",
                    role.arn
                )));
            }
            Ok(self.mint(role.duration.as_secs()))
        }
    }

    struct Codes(Rc<RefCell<usize>>);

    impl CodeProvider for Codes {
        fn code(&mut self, _: &Ask, _: Option<&str>) -> Result<String, Fail> {
            *self.0.borrow_mut() += 1;
            Ok(CODE.into())
        }
        fn interactive(&self) -> bool {
            false
        }
    }

    fn role(profile: &str, secs: u64) -> Role {
        Role {
            profile: profile.into(),
            arn: format!("arn:aws:iam::444455556666:role/{profile}"),
            external_id: None,
            session_name: "stsmfa-work".into(),
            source_identity: None,
            duration: Duration::from_secs(secs),
            min_ttl: Duration::from_secs(900),
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
            let dir = crate::testkit::TempDir::new(&format!("roles-{name}"));
            World {
                store: MemoryStore::default(),
                calls: Default::default(),
                asked: Default::default(),
                dir,
            }
        }

        fn settings(&self, roles: Vec<Role>) -> Settings {
            Settings {
                profile: "work".into(),
                roles,
                mfa_serial: Some(SERIAL.into()),
                code: CodeSource::Prompt(None),
                duration: Duration::from_secs(12 * 3600),
                min_ttl: Duration::from_secs(900),
                store: StoreChoice::None,
                region: Some("eu-west-1".into()),
                keys: KeySource::File(LongTermKeys {
                    access_key_id: "AKIAWORK".into(),
                    secret_access_key: Secret::new("x".into()),
                }),
                lock_timeout: Duration::from_secs(1),
                timeout: Duration::from_secs(30),
                state_dir: self.dir.to_path_buf(),
                refresh: false,
                after_miss: false,
                ykman_account: None,
            }
        }

        fn run(&self, s: &Settings) -> Result<Session, Fail> {
            // Every code is new: the used-code record is not what this tests.
            let _ = std::fs::remove_dir_all(&self.dir);
            let calls = self.calls.clone();
            let asked = self.asked.clone();
            let mut sts =
                move || -> Result<Box<dyn Sts>, Fail> { Ok(Box::new(FakeSts(calls.clone()))) };
            let mut provider = move || -> Result<Box<dyn CodeProvider>, Fail> {
                Ok(Box::new(Codes(asked.clone())))
            };
            let mut deps = Deps {
                store: &self.store,
                sts: &mut sts,
                provider: &mut provider,
                now,
                sleep: |_| {},
            };
            session::get(s, &mut deps)
        }

        fn asked(&self) -> usize {
            *self.asked.borrow()
        }

        fn callers(&self) -> Vec<String> {
            self.calls
                .borrow()
                .assume
                .iter()
                .map(|(_, w)| w.clone())
                .collect()
        }
    }

    #[test]
    fn default_path_assumes_with_the_mfa_session_then_hits() {
        let w = World::new("default");
        let s = w.settings(vec![role("prod", 3600)]);
        let first = w.run(&s).unwrap();
        assert_eq!(w.asked(), 1);
        assert_eq!(w.calls.borrow().gst, 1);
        // The MFA session (ASIA1) assumed the role; no code went to AssumeRole.
        assert_eq!(w.callers(), vec!["ASIA1"]);
        assert_eq!(first.access_key_id, "ASIA2");
        assert_eq!(first.expiration, NOW + 3600);

        let again = w.run(&s).unwrap();
        assert_eq!(again, first, "a hit");
        assert_eq!(w.calls.borrow().assume.len(), 1);
        // The hit is one store read: no index, no device look-up.
        let s2 = w.settings(vec![role("prod", 3600)]);
        let hit = cached(&s2, 0, &w.store, now, Mode::default()).unwrap();
        assert!(hit.is_some());
    }

    #[test]
    fn every_role_of_a_source_shares_one_code_and_a_refresh_asks_none() {
        let w = World::new("share");
        for name in ["a", "b", "c", "d"] {
            w.run(&w.settings(vec![role(name, 3600)])).unwrap();
        }
        assert_eq!(w.asked(), 1, "one code for four roles");
        assert_eq!(w.calls.borrow().gst, 1);
        assert_eq!(w.callers(), vec!["ASIA1"; 4]);

        let mut s = w.settings(vec![role("a", 3600)]);
        s.refresh = true;
        let renewed = w.run(&s).unwrap();
        assert_eq!(renewed.access_key_id, "ASIA6");
        assert_eq!(w.asked(), 1, "renewing a role session asks nothing");
        assert_eq!(w.calls.borrow().gst, 1);
    }

    #[test]
    fn long_path_sends_the_code_with_assume_role() {
        let w = World::new("long");
        let s = w.settings(vec![role("prod", 7200)]);
        let got = w.run(&s).unwrap();
        assert_eq!(got.expiration, NOW + 7200);
        assert_eq!(w.callers(), vec![format!("code:{CODE}")]);
        assert_eq!(w.calls.borrow().gst, 0, "no MFA session on the long path");
        assert_eq!(w.run(&s).unwrap(), got, "cached for its lifetime");
        assert_eq!(w.asked(), 1);
    }

    #[test]
    fn a_chain_assumes_each_role_with_the_session_before_and_caches_each() {
        let w = World::new("chain");
        let s = w.settings(vec![role("hop1", 3600), role("hop2", 3600)]);
        let got = w.run(&s).unwrap();
        assert_eq!(w.callers(), vec!["ASIA1", "ASIA2"]);
        assert_eq!(got.access_key_id, "ASIA3");
        // hop1 alone is a hit now, and hop2's key names its chain.
        let hop1 = w.run(&w.settings(vec![role("hop1", 3600)])).unwrap();
        assert_eq!(hop1.access_key_id, "ASIA2");
        let index = Cache::new(&w.store, &w.dir).index();
        let hop2 = index.iter().find(|i| i.key.profile == "hop2").unwrap();
        let r = hop2.key.role.as_ref().unwrap();
        assert_eq!(r.chain, vec!["work", "hop1"]);
        assert_eq!(hop2.key.serial, SERIAL);
        assert_eq!(hop2.mfa_at, Some(NOW), "the MFA time of the source session");
        assert!(hop2.key.involves("work") && hop2.key.involves("hop1"));
    }

    /// An MFA session cached `age` seconds ago.
    fn old_mfa_session(w: &World, age: u64) -> String {
        let s = w.settings(Vec::new());
        let old = Session {
            access_key_id: "ASIAOLD".into(),
            secret_access_key: Secret::new("sk".into()),
            session_token: Secret::new("st".into()),
            expiration: NOW + 30_000,
        };
        let key = CacheKey {
            profile: "work".into(),
            serial: SERIAL.into(),
            source_key_id: "AKIAWORK".into(),
            role: None,
        };
        Cache::new(&w.store, &w.dir)
            .save(&key, &old, Some(NOW - age))
            .unwrap();
        drop(s);
        old.access_key_id
    }

    #[test]
    fn denied_with_an_old_mfa_session_gets_a_new_one_and_tries_once_more() {
        let w = World::new("age");
        let old = old_mfa_session(&w, 3700);
        w.calls.borrow_mut().deny_keys.push(old.clone());
        let got = w.run(&w.settings(vec![role("prod", 3600)])).unwrap();
        assert_eq!(w.callers(), vec![old, "ASIA1".to_owned()]);
        assert_eq!(got.access_key_id, "ASIA2");
        assert_eq!(w.asked(), 1, "one new code");
        assert_eq!(w.calls.borrow().gst, 1);
        // The new MFA session replaced the old one in the cache.
        let mfa = session::cached(&w.settings(Vec::new()), &w.store, now)
            .unwrap()
            .unwrap();
        assert_eq!(mfa.access_key_id, "ASIA1");
    }

    #[test]
    fn denied_with_a_young_mfa_session_is_not_retried() {
        let w = World::new("young");
        let young = old_mfa_session(&w, RETRY_AGE - 10);
        w.calls.borrow_mut().deny_all = true;
        let e = w.run(&w.settings(vec![role("prod", 3600)])).unwrap_err();
        assert_eq!(w.callers(), vec![young]);
        assert_eq!(w.asked(), 0, "no code asked");
        assert!(e.message.contains("(MFA 290 s old)"), "{}", e.message);
        assert!(
            e.hints
                .iter()
                .any(|h| h.contains("does not exist, or its trust policy"))
        );
        assert!(
            e.hints
                .iter()
                .any(|h| h.contains("set external_id in [profile prod]"))
        );
    }

    #[test]
    fn still_denied_with_a_new_mfa_session_is_one_clear_error() {
        let w = World::new("still");
        old_mfa_session(&w, 4000);
        w.calls.borrow_mut().deny_all = true;
        let mut r = role("prod", 3600);
        r.external_id = Some("x".into());
        let e = w.run(&w.settings(vec![r])).unwrap_err();
        assert_eq!(w.calls.borrow().assume.len(), 2, "once more, not again");
        assert_eq!(w.asked(), 1);
        assert!(
            e.message
                .contains("even with a new MFA session (0 s old; the first try's was 4000 s)"),
            "{}",
            e.message
        );
        assert!(
            e.hints
                .iter()
                .any(|h| h.contains("check external_id in [profile prod]"))
        );
        assert!(e.hints.iter().any(|h| h.contains("aws:MultiFactorAuthAge")));
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn waiters_on_a_role_report_its_holders_assume_role_failure() {
        let w = World::new("leave");
        w.calls.borrow_mut().deny_all = true;
        let s = w.settings(vec![role("prod", 3600)]);
        // `run` clears the state directory first, so call in place.
        let calls = w.calls.clone();
        let asked = w.asked.clone();
        let mut sts =
            move || -> Result<Box<dyn Sts>, Fail> { Ok(Box::new(FakeSts(calls.clone()))) };
        let mut provider =
            move || -> Result<Box<dyn CodeProvider>, Fail> { Ok(Box::new(Codes(asked.clone()))) };
        let mut deps = Deps {
            store: &w.store,
            sts: &mut sts,
            provider: &mut provider,
            now,
            sleep: |_| {},
        };
        assert!(session::get(&s, &mut deps).is_err());
        let left = crate::failure::since(&w.dir, "role prod", now()).expect("recorded");
        assert_eq!(left.profile, "prod");
        assert!(
            left.fail.message.starts_with("AWS denied AssumeRole"),
            "{}",
            left.fail.message
        );
    }

    #[test]
    fn assume_role_errors_are_translated_with_hints() {
        let w = World::new("errors");
        let s = w.settings(vec![role("prod", 7200)]);
        let max = role_fail(
            &s,
            0,
            &StsError::Invalid(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .into(),
            ),
        );
        assert!(
            max.message
                .contains("allows no session as long as the 7200 s profile prod asks for"),
            "{}",
            max.message
        );
        assert!(
            max.hints
                .iter()
                .any(|h| h.contains("lower duration_seconds in [profile prod]"))
        );
        let chain = role_fail(
            &s,
            0,
            &StsError::Invalid("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into()),
        );
        assert!(
            chain
                .hints
                .iter()
                .any(|h| h.contains("duration_seconds = 3600"))
        );
        let net = role_fail(&s, 0, &StsError::Network("Connection refused".into()));
        assert!(
            net.message.starts_with("cannot reach AWS"),
            "{}",
            net.message
        );
        assert!(
            net.hints
                .iter()
                .any(|h| h.contains("STS region used: eu-west-1"))
        );
        let region = role_fail(
            &s,
            0,
            &StsError::RegionDisabled("STS is not activated".into()),
        );
        assert!(
            region
                .hints
                .iter()
                .any(|h| h.contains("region where STS is active"))
        );
        let s = w.settings(vec![role("prod", 3600)]);
        let expired = role_fail(
            &s,
            0,
            &StsError::ExpiredKey("The security token included in the request is expired".into()),
        );
        assert!(
            expired.message.contains("the MFA session of profile work"),
            "{}",
            expired.message
        );
        assert!(
            expired
                .hints
                .iter()
                .any(|h| h.contains("stsmfa clear work"))
        );
        for e in [
            StsError::Throttled("Rate exceeded".into()),
            StsError::Invalid("1 validation error".into()),
            StsError::Denied("no".into()),
        ] {
            let f = role_fail(&s, 0, &e);
            assert!(f.message.contains("role/prod"), "{}", f.message);
            assert!(!f.hints.is_empty(), "{e:?}");
        }
    }
}
