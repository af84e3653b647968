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
        source_key_id: s.keys.access_key_id.clone(),
        role: Some(RoleRef {
            arn: s.roles[n].arn.clone(),
            chain,
        }),
    }
}

/// The lock of a role profile (no profile name holds a space).
fn lock_name(role: &Role) -> String {
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
        Cache::new(deps.store, &s.state_dir).known_serial(&s.profile, &s.keys.access_key_id)
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
