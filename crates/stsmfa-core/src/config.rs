//! Resolves flags > environment > AWS profile > defaults into one `Settings`.
//!
//! The AWS files are read by `profiles` (with the SDK's rules); this module
//! only applies precedence, which also hands us custom keys like
//! `mfa_serial` and `stsmfa_duration`.

use crate::EnvLookup;
use crate::cli::SessionOpts;
use crate::credentials::{KeySource, LongTermKeys};
use crate::error::Fail;
use crate::fail;
#[cfg(test)]
use crate::profiles::FileKind;
use crate::profiles::{Profile, ProfileSet, config_files};
use crate::prompt::PromptMethod;
use crate::secret::Secret;
use crate::store::StoreChoice;
use std::path::PathBuf;
use std::time::Duration;

/// STS's limits on `DurationSeconds` for IAM users.
pub const MIN_DURATION: u64 = 900;
pub const MAX_DURATION: u64 = 129_600;
const DEFAULT_DURATION: u64 = 12 * 3600;
const DEFAULT_MIN_TTL: u64 = 15 * 60;
const DEFAULT_LOCK_TIMEOUT: u64 = 120;
const DEFAULT_TIMEOUT: u64 = 30;
/// AWS caps a role assumed with session credentials (an MFA session or
/// another role's session: "role chaining") at one hour.
pub const CHAINING_LIMIT: u64 = 3600;
/// AssumeRole's bounds on `DurationSeconds` (a role's `MaxSessionDuration`
/// is at most 12 hours).
pub const ROLE_MIN_DURATION: u64 = 900;
pub const ROLE_MAX_DURATION: u64 = 43_200;
const ROLE_DEFAULT_DURATION: u64 = 3600;

/// Where the MFA code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// `--mfa-code` or `STSMFA_MFA_CODE`; the label says which, for messages.
    Given { code: String, from: &'static str },
    /// `mfa_process`: a shell command whose stdout is the code.
    Process(String),
    /// Ask: on the terminal, or with the chosen or first available dialog.
    Prompt(Option<PromptMethod>),
}

/// One role profile of a chain, with the keys the AWS CLI reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub profile: String,
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub source_identity: Option<String>,
    pub duration: Duration,
    pub min_ttl: Duration,
}

impl Role {
    /// Longer than AWS lets a role assumed with session credentials last:
    /// such a role is assumed with the long-term keys and an MFA code.
    pub fn long(&self) -> bool {
        self.duration.as_secs() > CHAINING_LIMIT
    }
}

/// Everything a command needs, resolved once.
#[derive(Debug)]
pub struct Settings {
    /// The source profile: the one holding the long-term keys, whose MFA
    /// session this is (or whose MFA session the roles are assumed with).
    pub profile: String,
    /// The role chain, from the role the source's session assumes to the
    /// role profile asked for; empty when a source profile was asked for.
    pub roles: Vec<Role>,
    /// `None`: discover it with GetCallerIdentity + ListMFADevices.
    pub mfa_serial: Option<String>,
    pub code: CodeSource,
    pub duration: Duration,
    pub min_ttl: Duration,
    pub store: StoreChoice,
    /// `--region`, the environment or the profile; `None` leaves it to the SDK.
    pub region: Option<String>,
    /// The keys in the AWS files, or "look in the key store" (on a miss).
    pub keys: KeySource,
    pub lock_timeout: Duration,
    /// Bound on one whole STS/IAM call (`STSMFA_TIMEOUT`).
    pub timeout: Duration,
    pub state_dir: PathBuf,
    pub refresh: bool,
    /// The small binary has just read the cache and missed: go straight to
    /// the lock (the cache is read again there).
    pub after_miss: bool,
    pub ykman_account: Option<String>,
}

impl Settings {
    /// The profile whose credentials are handed out: the role profile, or
    /// the source profile.
    pub fn served_profile(&self) -> &str {
        self.roles.last().map_or(&self.profile, |r| &r.profile)
    }
}

/// The profile to use: the argument, else `$AWS_PROFILE`, else `default`.
pub fn profile_name(arg: Option<&str>, env: EnvLookup) -> String {
    arg.map(str::to_owned)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_owned())
}

/// The profile whose session `name` stands for: the profile itself, or for
/// `credential_process = stsmfa credential-process X` the profile X.
pub fn session_profile(name: &str, profiles: &ProfileSet) -> String {
    served_profile(name, profiles, &|_| None)
        .map(|(n, _)| n)
        .unwrap_or_else(|_| name.to_owned())
}

/// Resolves the settings for `profile` from the options, the environment and the files.
pub fn resolve(
    profile_arg: Option<&str>,
    opts: &SessionOpts,
    env: EnvLookup,
    profiles: &ProfileSet,
) -> Result<Settings, Fail> {
    let requested = profile_name(profile_arg, env);
    let (served, served_p) = served_profile(&requested, profiles, env)?;
    let (chain, (profile_name, profile)) = role_chain(&served, served_p, profiles)?;
    // Keys of the role profiles win over the source's, the one asked for
    // first, as the AWS CLI reads `mfa_serial` and `region`.
    let key = |k: &str| {
        chain
            .iter()
            .rev()
            .map(|(_, p)| *p)
            .chain([profile])
            .find_map(|p| value(p, k))
    };
    let source_key = |k: &str| value(profile, k);

    let keys = long_term_keys(&profile_name, profile)?;

    let mfa_serial = first(&[
        (opts.mfa_serial.clone(), "--mfa-serial"),
        (env("STSMFA_MFA_SERIAL"), "STSMFA_MFA_SERIAL"),
        (key("mfa_serial"), "mfa_serial"),
    ]);
    let mfa_serial = match mfa_serial {
        Some((serial, from)) => Some(check_serial(&serial, from)?),
        None => None,
    };

    let code = if let Some(code) = opts.mfa_code.clone() {
        CodeSource::Given {
            code,
            from: "--mfa-code",
        }
    } else if let Some(code) = env("STSMFA_MFA_CODE") {
        CodeSource::Given {
            code,
            from: "STSMFA_MFA_CODE",
        }
    } else if let Some(cmd) = key("mfa_process") {
        CodeSource::Process(cmd)
    } else {
        let method = match opts.prompt {
            Some(m) => Some(m),
            None => match first(&[
                (env("STSMFA_PROMPT"), "STSMFA_PROMPT"),
                (key("stsmfa_prompt"), "stsmfa_prompt"),
            ]) {
                Some((v, from)) => Some(parse_enum::<PromptMethod>(&v, from)?),
                None => None,
            },
        };
        CodeSource::Prompt(method)
    };

    // `--duration` is the length of what is handed out: the role session
    // for a role profile, else the MFA session.
    let mfa_duration_opt = if chain.is_empty() {
        opts.duration.clone()
    } else {
        None
    };
    let duration = match first(&[
        (mfa_duration_opt.clone(), "--duration"),
        (env("STSMFA_DURATION"), "STSMFA_DURATION"),
        (source_key("stsmfa_duration"), "stsmfa_duration"),
    ]) {
        Some((v, from)) => {
            session_duration(&v).map_err(|e| with_source(e, from, mfa_duration_opt.is_some()))?
        }
        None => Duration::from_secs(DEFAULT_DURATION),
    };

    let margin = match first(&[
        (env("STSMFA_MIN_TTL"), "STSMFA_MIN_TTL"),
        (key("stsmfa_min_ttl"), "stsmfa_min_ttl"),
    ]) {
        Some((v, from)) => parse_duration(&v).map_err(|e| with_source(e, from, false))?,
        None => Duration::from_secs(DEFAULT_MIN_TTL),
    };
    let min_ttl = scaled_margin(margin, duration);
    let roles = chain
        .iter()
        .enumerate()
        .map(|(n, (name, p))| {
            let flag = (n + 1 == chain.len())
                .then_some(opts.duration.as_deref())
                .flatten();
            role(name, p, n, flag, &profile_name, margin)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let timeout = match env("STSMFA_TIMEOUT") {
        Some(v) => parse_duration(&v).map_err(|e| with_source(e, "STSMFA_TIMEOUT", false))?,
        None => Duration::from_secs(DEFAULT_TIMEOUT),
    };

    let lock_timeout = match env("STSMFA_LOCK_TIMEOUT") {
        Some(v) => parse_duration(&v).map_err(|e| with_source(e, "STSMFA_LOCK_TIMEOUT", false))?,
        None => Duration::from_secs(DEFAULT_LOCK_TIMEOUT),
    };

    Ok(Settings {
        mfa_serial,
        code,
        duration,
        min_ttl,
        store: store_choice(opts.store, env)?,
        region: opts
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| key("region")),
        keys,
        lock_timeout,
        timeout,
        state_dir: state_dir(env)?,
        refresh: opts.refresh,
        after_miss: false,
        ykman_account: key("stsmfa_ykman_account"),
        profile: profile_name,
        roles,
    })
}

/// A profile's value for `key`, trimmed; `None` when unset or empty.
fn value(profile: &Profile, key: &str) -> Option<String> {
    profile
        .get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A session no longer than the margin would never be served from the
/// cache. For sessions that short the margin scales down to a third of
/// their length (a 15-minute session is served for 10 minutes).
fn scaled_margin(margin: Duration, duration: Duration) -> Duration {
    if margin >= duration {
        let scaled = duration / 3;
        crate::diag(&format!(
            "refresh margin {} s is too long for a {} s session; using {} s",
            margin.as_secs(),
            duration.as_secs(),
            scaled.as_secs()
        ));
        scaled
    } else {
        margin
    }
}

/// Follows `source_profile` from the role profile `name` down to the profile
/// with the long-term keys. Returns the role profiles, the one the source
/// assumes first, and the source. A profile that is its own
/// `source_profile` and holds keys is its own source, as for the AWS CLI.
fn role_chain<'a>(
    name: &str,
    profile: &'a Profile,
    profiles: &'a ProfileSet,
) -> Result<RoleChain<'a>, Fail> {
    let mut roles: Vec<(String, &'a Profile)> = Vec::new();
    let mut seen = vec![name.to_owned()];
    let (mut name, mut profile) = (name.to_owned(), profile);
    loop {
        for unsupported in ["credential_source", "web_identity_token_file"] {
            if value(profile, unsupported).is_some() {
                return Err(fail!(
                    "profile '{name}' uses {unsupported}, which stsmfa does not support"
                )
                .hint("stsmfa assumes roles from a source profile with an IAM user's long-term keys: set source_profile instead")
                .hint("leave this profile to the AWS CLI, which handles it itself"));
            }
        }
        let Some(arn) = value(profile, "role_arn") else {
            break;
        };
        check_role_arn(&arn, &name)?;
        let Some(source) = value(profile, "source_profile") else {
            return Err(
                fail!("role profile '{name}' has role_arn but no source_profile").hint(format!(
                    "add source_profile = PROFILE (the profile with the IAM user's keys) to [profile {name}]"
                )),
            );
        };
        roles.push((name.clone(), profile));
        if source == name && profile.get("aws_access_key_id").is_some() {
            break;
        }
        if seen.contains(&source) {
            seen.push(source);
            return Err(fail!("source_profile loop: {}", seen.join(" -> ")).hint(
                "each role profile's source_profile must lead, without coming back, to a profile with long-term keys",
            ));
        }
        let Some(next) = profiles.get_profile(&source) else {
            return Err(fail!(
                "profile '{name}' names source_profile '{source}', which is not in the AWS config or credentials file"
            )
            .hint(format!("add [profile {source}] with the IAM user's keys, or fix source_profile in [profile {name}]")));
        };
        seen.push(source.clone());
        (name, profile) = (source, next);
    }
    roles.reverse();
    Ok((roles, (name, profile)))
}

/// The role profiles of a chain and the source profile.
type RoleChain<'a> = (Vec<(String, &'a Profile)>, (String, &'a Profile));

fn check_role_arn(arn: &str, profile: &str) -> Result<(), Fail> {
    let ok = arn.starts_with("arn:")
        && arn
            .split(':')
            .nth(5)
            .is_some_and(|r| r.starts_with("role/"));
    if ok {
        Ok(())
    } else {
        Err(
            fail!("role_arn '{arn}' in [profile {profile}] is not a role ARN")
                .hint("write it as arn:aws:iam::ACCOUNT:role/NAME"),
        )
    }
}

/// One hop of the chain: `n` is its place (0: assumed with the source's
/// session or keys), `flag` the `--duration` given for the role asked for.
fn role(
    name: &str,
    p: &Profile,
    n: usize,
    flag: Option<&str>,
    source: &str,
    margin: Duration,
) -> Result<Role, Fail> {
    let (text, from) = match (flag, value(p, "duration_seconds")) {
        (Some(v), _) => (Some(v.to_owned()), "--duration".to_owned()),
        (None, Some(v)) => (Some(v), format!("duration_seconds in [profile {name}]")),
        (None, None) => (None, String::new()),
    };
    let duration = match text {
        Some(v) => role_duration(&v).map_err(|e| with_source(e, &from, flag.is_some()))?,
        None => Duration::from_secs(ROLE_DEFAULT_DURATION),
    };
    if n > 0 && duration.as_secs() > CHAINING_LIMIT {
        let mut f = fail!(
            "role profile '{name}' asks for {} s ({from}), but its source_profile is a role, and AWS caps a role assumed with another role's session at 1 hour (role chaining)",
            duration.as_secs()
        )
        .hint(format!("set duration_seconds = 3600 or less in [profile {name}]"))
        .hint("for a longer session, assume the role straight from the profile with the long-term keys: stsmfa then asks for an MFA code for it");
        if flag.is_some() {
            f.code = 2;
        }
        return Err(f);
    }
    let session_name = match value(p, "role_session_name") {
        Some(v) => check_session_name(&v, name)?,
        None => default_session_name(source),
    };
    Ok(Role {
        profile: name.to_owned(),
        arn: value(p, "role_arn").expect("a role profile has role_arn"),
        external_id: value(p, "external_id"),
        session_name,
        source_identity: value(p, "source_identity"),
        min_ttl: scaled_margin(margin, duration),
        duration,
    })
}

/// A role session length AssumeRole accepts, checked before any call.
pub fn role_duration(s: &str) -> Result<Duration, Fail> {
    let d = parse_duration(s)?;
    if !(ROLE_MIN_DURATION..=ROLE_MAX_DURATION).contains(&d.as_secs()) || d.subsec_nanos() != 0 {
        return Err(fail!("role session duration '{}' is out of range", s.trim())
            .hint("AssumeRole allows 15m (900) to 12h (43200), and at most the role's MaxSessionDuration"));
    }
    Ok(d)
}

/// AWS's pattern for a role session name: 2–64 characters of `[\w+=,.@-]`.
fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn check_session_name(v: &str, profile: &str) -> Result<String, Fail> {
    if (2..=64).contains(&v.len()) && v.chars().all(session_name_char) {
        Ok(v.to_owned())
    } else {
        Err(
            fail!("invalid role_session_name '{v}' in [profile {profile}]")
                .hint("AWS allows 2 to 64 characters: letters, digits and _+=,.@-"),
        )
    }
}

/// `stsmfa-SOURCE`, so CloudTrail shows whose keys assumed the role.
fn default_session_name(source: &str) -> String {
    let name: String = format!("stsmfa-{source}")
        .chars()
        .map(|c| if session_name_char(c) { c } else { '-' })
        .take(64)
        .collect();
    name
}

/// `--store` > `STSMFA_STORE` > auto.
pub fn store_choice(opt: Option<StoreChoice>, env: EnvLookup) -> Result<StoreChoice, Fail> {
    match (opt, env("STSMFA_STORE")) {
        (Some(s), _) => Ok(s),
        (None, Some(v)) => parse_enum(&v, "STSMFA_STORE"),
        (None, None) => Ok(StoreChoice::Auto),
    }
}

/// The user's platform directories, as the `dirs` crate finds them (a seam,
/// so tests need not change the process environment).
pub struct PlatformDirs {
    /// `$XDG_RUNTIME_DIR` on Linux; none on macOS and Windows.
    pub runtime: Option<PathBuf>,
    /// `$XDG_CACHE_HOME` or `~/.cache`; `~/Library/Caches`; `%LOCALAPPDATA%`.
    pub cache: Option<PathBuf>,
}

impl PlatformDirs {
    pub fn real() -> PlatformDirs {
        PlatformDirs {
            runtime: dirs::runtime_dir(),
            cache: dirs::cache_dir(),
        }
    }
}

/// Lock files and the used-code record. Nothing secret lives there, but
/// files another user plants in it could make stsmfa overwrite the user's
/// files, so it is never a shared place such as the temp dir (and
/// `statedir` refuses a directory of someone else's or one others can write).
/// The runtime dir counts only when it is what the XDG spec says it is: a
/// directory of the user's that others cannot write.
pub fn state_dir(env: EnvLookup) -> Result<PathBuf, Fail> {
    state_dir_in(env, &PlatformDirs::real())
}

fn state_dir_in(env: EnvLookup, platform: &PlatformDirs) -> Result<PathBuf, Fail> {
    if let Some(d) = env("STSMFA_STATE_DIR") {
        return Ok(PathBuf::from(d));
    }
    let private_runtime = platform
        .runtime
        .as_ref()
        .filter(|d| d.is_absolute() && crate::statedir::is_private(d));
    private_runtime
        .or(platform.cache.as_ref().filter(|d| d.is_absolute()))
        .map(|d| d.join("stsmfa"))
        .ok_or_else(|| {
            fail!("no place for stsmfa's state directory: no home or cache directory is known")
                .hint("set STSMFA_STATE_DIR to a directory of your own (stsmfa creates it with mode 0700), or set HOME")
        })
}

/// Finds the profile to serve: a source profile with long-term keys, or a
/// role profile. A profile whose `credential_process` is `stsmfa
/// credential-process X` leads to `X`, so `stsmfa env work-mfa` does what
/// the user means.
fn served_profile<'a>(
    name: &str,
    profiles: &'a ProfileSet,
    env: EnvLookup,
) -> Result<(String, &'a Profile), Fail> {
    let Some(profile) = profiles.get_profile(name) else {
        let mut known: Vec<&str> = profiles.profiles().collect();
        known.sort_unstable();
        let hint = if known.is_empty() {
            let [config, credentials] = config_files(env);
            format!(
                "add the profile to {} and {} (see `stsmfa --help`)",
                credentials.display(),
                config.display()
            )
        } else {
            format!("known profiles: {}", known.join(", "))
        };
        return Err(
            fail!("profile '{name}' is not in the AWS config or credentials file").hint(hint),
        );
    };
    if profile.get("aws_access_key_id").is_none()
        && profile.get("role_arn").is_none()
        && let Some(target) = profile.get("credential_process").and_then(stsmfa_target)
        && target != name
        && let Some(p) = profiles.get_profile(&target)
        && (p.get("aws_access_key_id").is_some()
            || p.get("role_arn").is_some()
            // Keys in the key store: a profile that is not itself a
            // credential_process of another profile.
            || p.get("credential_process")
                .and_then(stsmfa_target)
                .is_none_or(|t| t == target))
    {
        return Ok((target, p));
    }
    Ok((name.to_owned(), profile))
}

/// `stsmfa credential-process work [...]` → `work`.
fn stsmfa_target(cmd: &str) -> Option<String> {
    let mut words = cmd.split_whitespace();
    let bin = words.next()?;
    if !bin.trim_matches(['"', '\'']).ends_with("stsmfa") {
        return None;
    }
    let mut words = words.skip_while(|w| *w != "credential-process").skip(1);
    while let Some(w) = words.next() {
        match w {
            "-v" | "--verbose" | "--refresh" => {}
            flag if flag.starts_with('-') => {
                if !flag.contains('=') {
                    words.next(); // the flag's value
                }
            }
            profile => return Some(profile.trim_matches(['"', '\'']).to_owned()),
        }
    }
    None
}

/// The keys in the profile, or [`KeySource::Store`] when it has none: the
/// key store is read on a miss (`stsmfa-sts`), which reports a profile with
/// keys nowhere ([`no_keys`]).
fn long_term_keys(name: &str, profile: &Profile) -> Result<KeySource, Fail> {
    let get = |k: &str| profile.get(k).map(str::trim).filter(|v| !v.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => {
            if get("aws_session_token").is_some() {
                return Err(fail!("profile '{name}' holds temporary credentials (aws_session_token), not an IAM user's long-term keys")
                    .hint(format!("put the IAM user's access key in [{name}] of ~/.aws/credentials and remove aws_session_token"))
                    .hint(format!("or store it with `stsmfa add {name}` and remove the three lines")));
            }
            Ok(KeySource::File(LongTermKeys {
                access_key_id: id.to_owned(),
                secret_access_key: Secret::new(secret.to_owned()),
            }))
        }
        (Some(_), None) => Err(fail!(
            "profile '{name}' has aws_access_key_id but no aws_secret_access_key"
        )
        .hint(format!(
            "add aws_secret_access_key to [{name}] in ~/.aws/credentials"
        ))),
        _ => Ok(KeySource::Store),
    }
}

/// The error for a profile with long-term keys neither in the key store nor
/// in the AWS files.
pub fn no_keys(name: &str, profile: Option<&Profile>) -> Fail {
    // Also when the process is stsmfa for this very profile (SPEC: never
    // from the source profile's own credential_process).
    let only_process = profile
        .and_then(|p| p.get("credential_process"))
        .is_some_and(|v| !v.trim().is_empty());
    if only_process {
        return fail!(
            "profile '{name}' only has a credential_process; stsmfa needs the IAM user's long-term keys"
        )
        .hint(format!("store them with `stsmfa add {name}`, or put aws_access_key_id and aws_secret_access_key in [{name}] of ~/.aws/credentials"))
        .hint("keep `credential_process = stsmfa credential-process SOURCE` in a separate profile that names that source profile");
    }
    fail!("profile '{name}' has no long-term access key")
        .hint(format!(
            "store one with `stsmfa add {name}` (or `stsmfa import {name}` from ~/.aws/credentials)"
        ))
        .hint(format!(
            "or add aws_access_key_id and aws_secret_access_key to [{name}] in ~/.aws/credentials"
        ))
}

fn first(candidates: &[(Option<String>, &'static str)]) -> Option<(String, &'static str)> {
    candidates.iter().find_map(|(v, from)| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| (v.to_owned(), *from))
    })
}

fn with_source(e: Fail, from: &str, usage: bool) -> Fail {
    let mut f = Fail::new(format!("{} (from {from})", e.message));
    f.hints = e.hints;
    if usage {
        f.code = 2;
    }
    f
}

fn parse_enum<T: clap::ValueEnum>(v: &str, from: &str) -> Result<T, Fail> {
    T::from_str(v.trim(), true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_owned())
            .collect();
        fail!("invalid value '{v}' in {from}").hint(format!("use one of: {}", names.join(", ")))
    })
}

/// Parses `900`, `90s`, `15m`, `12h`, `1h30m`, `1d`: a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Fail> {
    let s = s.trim();
    let bad = || {
        fail!("invalid duration '{s}'")
            .hint("write seconds (900) or a number with a unit: 15m, 12h, 1h30m")
    };
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    humantime::parse_duration(s).map_err(|_| bad())
}

/// A session length STS will accept for an IAM user, checked before any call.
pub fn session_duration(s: &str) -> Result<Duration, Fail> {
    let d = parse_duration(s)?;
    let secs = d.as_secs();
    if !(MIN_DURATION..=MAX_DURATION).contains(&secs) || d.subsec_nanos() != 0 {
        return Err(fail!("session duration '{}' is out of range", s.trim())
            .hint("STS allows 15m (900) to 36h (129600) for IAM users"));
    }
    Ok(d)
}

/// AWS's pattern for a serial: 9–256 characters of `[\w+=/:,.@-]`.
fn check_serial(serial: &str, from: &str) -> Result<String, Fail> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c);
    if (9..=256).contains(&serial.len()) && serial.chars().all(ok_char) {
        Ok(serial.to_owned())
    } else {
        Err(fail!("invalid MFA serial '{serial}' (from {from})")
            .hint("use the device ARN, e.g. arn:aws:iam::111122223333:mfa/alice (`aws iam list-mfa-devices` shows it)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn profiles(config: &str, credentials: &str) -> ProfileSet {
        ProfileSet::parse(&[
            (FileKind::Config, config),
            (FileKind::Credentials, credentials),
        ])
        .unwrap()
    }

    const CREDS: &str = "[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = s3cr3t\n";
    const CONFIG: &str = "[profile work]\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\nregion = eu-west-1\nstsmfa_duration = 2h\n\n[profile work-mfa]\ncredential_process = stsmfa credential-process work\n";

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .chain(&[("HOME", "/home/u")]) // as every real environment has
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    /// Exactly these variables, no HOME unless named.
    fn bare_env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn platform(runtime: Option<&Path>, cache: Option<&str>) -> PlatformDirs {
        PlatformDirs {
            runtime: runtime.map(Path::to_owned),
            cache: cache.map(PathBuf::from),
        }
    }

    #[test]
    fn state_dir_without_a_home_is_an_error_not_the_temp_dir() {
        let e = state_dir_in(&bare_env(vec![]), &platform(None, None)).unwrap_err();
        assert!(
            e.message.contains("no home or cache directory"),
            "{}",
            e.message
        );
        assert!(
            e.hints
                .iter()
                .any(|h| h.contains("STSMFA_STATE_DIR") && h.contains("HOME")),
            "{:?}",
            e.hints
        );
        let relative = state_dir_in(&bare_env(vec![]), &platform(None, Some("rel/dir")));
        assert!(relative.is_err(), "a relative cache dir is ignored");
    }

    #[test]
    fn state_dir_resolution_order() {
        let none = bare_env(vec![]);
        let cache = Some("/home/u/.cache");
        assert_eq!(
            state_dir_in(&none, &platform(None, cache)).unwrap(),
            PathBuf::from("/home/u/.cache/stsmfa")
        );
        let env = bare_env(vec![("STSMFA_STATE_DIR", "/s".into())]);
        assert_eq!(
            state_dir_in(&env, &platform(None, cache)).unwrap(),
            PathBuf::from("/s")
        );
        // A private runtime dir is used; a shared one (/tmp) is not.
        let run = std::env::temp_dir().join(format!("stsmfa-xdg-run-{}", std::process::id()));
        crate::statedir::ensure(&run).unwrap();
        assert_eq!(
            state_dir_in(&none, &platform(Some(&run), cache)).unwrap(),
            run.join("stsmfa")
        );
        std::fs::remove_dir_all(&run).unwrap();
        #[cfg(unix)]
        assert_eq!(
            state_dir_in(&none, &platform(Some(Path::new("/tmp")), cache)).unwrap(),
            PathBuf::from("/home/u/.cache/stsmfa")
        );
    }

    #[test]
    fn precedence_option_env_profile_default() {
        let set = profiles(CONFIG, CREDS);
        let none = env_of(&[]);
        let s = resolve(Some("work"), &SessionOpts::default(), &none, &set).unwrap();
        assert_eq!(s.duration, Duration::from_secs(7200), "profile key");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            s.mfa_serial.as_deref(),
            Some("arn:aws:iam::111122223333:mfa/alice")
        );
        assert_eq!(s.min_ttl, Duration::from_secs(900));
        assert_eq!(s.code, CodeSource::Prompt(None));

        let env = env_of(&[
            ("STSMFA_DURATION", "3h"),
            ("AWS_REGION", "us-east-2"),
            ("STSMFA_MFA_SERIAL", "arn:aws:iam::1:mfa/env"),
            ("STSMFA_MFA_CODE", "123456"),
        ]);
        let s = resolve(Some("work"), &SessionOpts::default(), &env, &set).unwrap();
        assert_eq!(
            s.duration,
            Duration::from_secs(3 * 3600),
            "env beats profile"
        );
        assert_eq!(s.region.as_deref(), Some("us-east-2"));
        assert_eq!(s.mfa_serial.as_deref(), Some("arn:aws:iam::1:mfa/env"));
        assert_eq!(
            s.code,
            CodeSource::Given {
                code: "123456".into(),
                from: "STSMFA_MFA_CODE"
            }
        );

        let opts = SessionOpts {
            duration: Some("4h".into()),
            region: Some("ap-south-1".into()),
            mfa_code: Some("654321".into()),
            mfa_serial: Some("arn:aws:iam::1:mfa/opt".into()),
            ..Default::default()
        };
        let s = resolve(Some("work"), &opts, &env, &set).unwrap();
        assert_eq!(
            s.duration,
            Duration::from_secs(4 * 3600),
            "option beats env"
        );
        assert_eq!(s.region.as_deref(), Some("ap-south-1"));
        assert_eq!(s.mfa_serial.as_deref(), Some("arn:aws:iam::1:mfa/opt"));
        assert_eq!(
            s.code,
            CodeSource::Given {
                code: "654321".into(),
                from: "--mfa-code"
            }
        );
    }

    #[test]
    fn default_duration_and_aws_profile() {
        let set = profiles(
            "[profile other]\nregion = us-east-1\n",
            "[other]\naws_access_key_id = A\naws_secret_access_key = B\n",
        );
        let env = env_of(&[("AWS_PROFILE", "other")]);
        let s = resolve(None, &SessionOpts::default(), &env, &set).unwrap();
        assert_eq!(s.profile, "other");
        assert_eq!(s.duration, Duration::from_secs(12 * 3600));
        assert_eq!(s.mfa_serial, None);
    }

    #[test]
    fn credential_process_profile_leads_to_its_source() {
        let set = profiles(CONFIG, CREDS);
        let s = resolve(
            Some("work-mfa"),
            &SessionOpts::default(),
            &env_of(&[]),
            &set,
        )
        .unwrap();
        assert_eq!(s.profile, "work");
    }

    #[test]
    fn a_profile_without_keys_in_the_files_looks_in_the_key_store() {
        let set = profiles("[profile loop]\ncredential_process = other-tool get\n", "");
        let s = resolve(Some("loop"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        assert!(matches!(s.keys, KeySource::Store));
        assert_eq!(s.keys.cache_id(), crate::credentials::KEY_STORE_MARKER);
        // With nothing in the key store either, the miss reports it so.
        let e = no_keys("loop", set.get_profile("loop"));
        assert!(
            e.message.contains("only has a credential_process"),
            "{}",
            e.message
        );
        assert!(e.hints.iter().any(|h| h.contains("stsmfa add loop")));
        // A credential_process that runs stsmfa for the profile itself, too.
        let set = profiles(
            "[profile work]\ncredential_process = stsmfa credential-process work\n",
            "",
        );
        let e = no_keys("work", set.get_profile("work"));
        assert!(
            e.message.contains("only has a credential_process"),
            "{}",
            e.message
        );
        assert!(
            e.hints.iter().any(|h| h.contains("separate profile")),
            "{:?}",
            e.hints
        );
        let e = no_keys("bare", None);
        assert!(
            e.message.contains("no long-term access key"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_credential_process_profile_leads_to_a_source_whose_keys_are_stored() {
        let set = profiles(
            "[profile work-mfa]\ncredential_process = stsmfa credential-process work\n[profile work]\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\n",
            "",
        );
        let s = resolve(
            Some("work-mfa"),
            &SessionOpts::default(),
            &env_of(&[]),
            &set,
        )
        .unwrap();
        assert_eq!(s.profile, "work");
        assert!(matches!(s.keys, KeySource::Store));
    }

    #[test]
    fn missing_profile_lists_known_ones() {
        let set = profiles(CONFIG, CREDS);
        let e = resolve(Some("nope"), &SessionOpts::default(), &env_of(&[]), &set).unwrap_err();
        assert!(e.message.contains("'nope'"));
        assert!(e.hints[0].contains("work"), "{:?}", e.hints);
    }

    #[test]
    fn mfa_process_beats_prompt_and_loses_to_code() {
        let set = profiles(
            "[profile p]\nmfa_process = ykman oath accounts code -s x\n",
            "[p]\naws_access_key_id = A\naws_secret_access_key = B\n",
        );
        let s = resolve(Some("p"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        assert_eq!(
            s.code,
            CodeSource::Process("ykman oath accounts code -s x".into())
        );
        let s = resolve(
            Some("p"),
            &SessionOpts::default(),
            &env_of(&[("STSMFA_MFA_CODE", "111111")]),
            &set,
        )
        .unwrap();
        assert!(matches!(s.code, CodeSource::Given { .. }));
    }

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            session_duration("36h").unwrap(),
            Duration::from_secs(129_600)
        );
        assert_eq!(
            session_duration("12h").unwrap(),
            Duration::from_secs(43_200)
        );
        for bad in ["10m", "37h", "abc", "", "-5", "899", "1.5"] {
            assert!(session_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_duration_option_is_usage_error_naming_source() {
        let set = profiles(CONFIG, CREDS);
        let opts = SessionOpts {
            duration: Some("10m".into()),
            ..Default::default()
        };
        let e = resolve(Some("work"), &opts, &env_of(&[]), &set).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("--duration"));
        let e = resolve(
            Some("work"),
            &SessionOpts::default(),
            &env_of(&[("STSMFA_DURATION", "40h")]),
            &set,
        )
        .unwrap_err();
        assert!(e.message.contains("STSMFA_DURATION"));
    }

    #[test]
    fn a_duration_inside_the_margin_scales_the_margin_down() {
        let set = profiles(CONFIG, CREDS);
        let opts = SessionOpts {
            duration: Some("15m".into()),
            ..Default::default()
        };
        let s = resolve(Some("work"), &opts, &env_of(&[]), &set).unwrap();
        assert_eq!(s.min_ttl, Duration::from_secs(300));
        let opts = SessionOpts {
            duration: Some("16m".into()),
            ..Default::default()
        };
        let s = resolve(Some("work"), &opts, &env_of(&[]), &set).unwrap();
        assert_eq!(s.min_ttl, Duration::from_secs(900), "kept when it fits");
    }

    #[test]
    fn session_profile_follows_stsmfa_credential_process() {
        let set = profiles(CONFIG, CREDS);
        assert_eq!(session_profile("work-mfa", &set), "work");
        assert_eq!(session_profile("work", &set), "work");
        assert_eq!(session_profile("unknown", &set), "unknown");
    }

    #[test]
    fn serials_are_checked() {
        assert!(check_serial("arn:aws:iam::111122223333:mfa/alice", "x").is_ok());
        assert!(check_serial("GAHT12345678", "x").is_ok());
        assert!(check_serial("short", "x").is_err());
        assert!(check_serial("arn:aws:iam::1:mfa/a b", "x").is_err());
    }

    #[test]
    fn store_choice_from_env() {
        assert_eq!(
            store_choice(None, &env_of(&[("STSMFA_STORE", "keyutils")])).unwrap(),
            StoreChoice::Keyutils
        );
        assert_eq!(
            store_choice(None, &env_of(&[("STSMFA_STORE", "secret-service")])).unwrap(),
            StoreChoice::SecretService
        );
        assert!(store_choice(None, &env_of(&[("STSMFA_STORE", "bogus")])).is_err());
        assert_eq!(
            store_choice(
                Some(StoreChoice::None),
                &env_of(&[("STSMFA_STORE", "keyutils")])
            )
            .unwrap(),
            StoreChoice::None
        );
    }

    const ROLES: &str = "[profile work]\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\nregion = eu-west-1\nstsmfa_duration = 8h\n\n\
        [profile prod]\nrole_arn = arn:aws:iam::444455556666:role/Admin\nsource_profile = work\nregion = us-east-2\nexternal_id = x-1\n\n\
        [profile prod-mfa]\ncredential_process = stsmfa credential-process prod\n\n\
        [profile audit]\nrole_arn = arn:aws:iam::777788889999:role/Audit\nsource_profile = prod\nrole_session_name = alice\nmfa_serial = arn:aws:iam::111122223333:mfa/other\n\n\
        [profile long]\nrole_arn = arn:aws:iam::444455556666:role/Long\nsource_profile = work\nduration_seconds = 7200\n";

    #[test]
    fn a_role_profile_resolves_to_its_source_and_role() {
        let set = profiles(ROLES, CREDS);
        let s = resolve(Some("prod"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        assert_eq!(s.profile, "work", "the keys' profile");
        assert_eq!(s.served_profile(), "prod");
        assert_eq!(s.keys.cache_id(), "AKIAWORK");
        assert_eq!(
            s.mfa_serial.as_deref(),
            Some("arn:aws:iam::111122223333:mfa/alice"),
            "the source's"
        );
        assert_eq!(
            s.region.as_deref(),
            Some("us-east-2"),
            "the role profile's first"
        );
        assert_eq!(
            s.duration,
            Duration::from_secs(8 * 3600),
            "the MFA session's own length"
        );
        assert_eq!(
            s.roles,
            vec![Role {
                profile: "prod".into(),
                arn: "arn:aws:iam::444455556666:role/Admin".into(),
                external_id: Some("x-1".into()),
                session_name: "stsmfa-work".into(),
                source_identity: None,
                duration: Duration::from_secs(3600),
                min_ttl: Duration::from_secs(900),
            }]
        );
        assert!(!s.roles[0].long());
        // Through `credential_process = stsmfa credential-process prod`.
        let s = resolve(
            Some("prod-mfa"),
            &SessionOpts::default(),
            &env_of(&[]),
            &set,
        )
        .unwrap();
        assert_eq!(s.served_profile(), "prod");
        assert_eq!(session_profile("prod-mfa", &set), "prod");
        assert_eq!(session_profile("prod", &set), "prod");
    }

    #[test]
    fn a_chain_lists_its_roles_from_the_source_up() {
        let set = profiles(ROLES, CREDS);
        let s = resolve(Some("audit"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        let names: Vec<&str> = s.roles.iter().map(|r| r.profile.as_str()).collect();
        assert_eq!(names, vec!["prod", "audit"]);
        assert_eq!(s.roles[1].session_name, "alice");
        assert_eq!(
            s.mfa_serial.as_deref(),
            Some("arn:aws:iam::111122223333:mfa/other"),
            "the role profile's mfa_serial wins"
        );
        assert_eq!(
            s.region.as_deref(),
            Some("us-east-2"),
            "inherited from the role before"
        );
    }

    #[test]
    fn role_durations_choose_the_path_and_chains_are_capped_before_any_call() {
        let set = profiles(ROLES, CREDS);
        let s = resolve(Some("long"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        assert_eq!(s.roles[0].duration, Duration::from_secs(7200));
        assert!(s.roles[0].long());
        // --duration is the role session's; STSMFA_DURATION stays the MFA session's.
        let opts = SessionOpts {
            duration: Some("2h".into()),
            ..Default::default()
        };
        let env = env_of(&[("STSMFA_DURATION", "3h")]);
        let s = resolve(Some("prod"), &opts, &env, &set).unwrap();
        assert_eq!(s.roles[0].duration, Duration::from_secs(7200));
        assert_eq!(s.duration, Duration::from_secs(3 * 3600));
        let e = resolve(Some("audit"), &opts, &env, &set).unwrap_err();
        assert!(e.message.contains("role chaining"), "{}", e.message);
        assert_eq!(e.code, 2, "from a flag: bad usage");
        let set2 = profiles(
            &format!(
                "{ROLES}\n[profile audit2]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = prod\nduration_seconds = 3601\n"
            ),
            CREDS,
        );
        let e = resolve(Some("audit2"), &SessionOpts::default(), &env_of(&[]), &set2).unwrap_err();
        assert!(
            e.message.contains("duration_seconds in [profile audit2]")
                && e.message.contains("1 hour"),
            "{}",
            e.message
        );
        assert!(
            e.hints
                .iter()
                .any(|h| h.contains("duration_seconds = 3600"))
        );
        for bad in ["899", "43201", "1d"] {
            assert!(role_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(role_duration("12h").unwrap(), Duration::from_secs(43_200));
    }

    #[test]
    fn a_source_profile_loop_is_an_error_naming_the_profiles() {
        let set = profiles(
            "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = a\n[profile s]\nrole_arn = arn:aws:iam::1:role/S\nsource_profile = s\n",
            "",
        );
        let e = resolve(Some("a"), &SessionOpts::default(), &env_of(&[]), &set).unwrap_err();
        assert_eq!(e.message, "source_profile loop: a -> b -> a");
        assert!(!e.hints.is_empty());
        let e = resolve(Some("s"), &SessionOpts::default(), &env_of(&[]), &set).unwrap_err();
        assert_eq!(e.message, "source_profile loop: s -> s");
        // A profile with keys may be its own source, as for the AWS CLI.
        let set = profiles(
            "[profile me]\nrole_arn = arn:aws:iam::1:role/Me\nsource_profile = me\n",
            "[me]\naws_access_key_id = AKIAME\naws_secret_access_key = s\n",
        );
        let s = resolve(Some("me"), &SessionOpts::default(), &env_of(&[]), &set).unwrap();
        assert_eq!((s.profile.as_str(), s.roles.len()), ("me", 1));
    }

    #[test]
    fn unsupported_and_broken_role_profiles_are_clear_errors() {
        let cases = [
            (
                "credential_source = Ec2InstanceMetadata",
                "credential_source, which stsmfa does not support",
            ),
            (
                "web_identity_token_file = /t\nsource_profile = work",
                "web_identity_token_file, which stsmfa does not support",
            ),
            ("", "has role_arn but no source_profile"),
            (
                "source_profile = nowhere",
                "source_profile 'nowhere', which is not in",
            ),
            (
                "source_profile = work\nrole_session_name = a b",
                "invalid role_session_name",
            ),
        ];
        for (extra, needle) in cases {
            let config =
                format!("{CONFIG}\n[profile r]\nrole_arn = arn:aws:iam::1:role/R\n{extra}\n");
            let set = profiles(&config, CREDS);
            let e = resolve(Some("r"), &SessionOpts::default(), &env_of(&[]), &set).unwrap_err();
            assert!(e.message.contains(needle), "{extra}: {}", e.message);
            assert!(!e.hints.is_empty(), "{extra}");
        }
        let set = profiles(
            "[profile r]\nrole_arn = Admin\nsource_profile = work\n",
            CREDS,
        );
        let e = resolve(Some("r"), &SessionOpts::default(), &env_of(&[]), &set).unwrap_err();
        assert!(e.message.contains("not a role ARN"), "{}", e.message);
    }

    #[test]
    fn default_session_names_fit_aws_pattern() {
        assert_eq!(default_session_name("work"), "stsmfa-work");
        assert_eq!(default_session_name("team/dev:x%"), "stsmfa-team-dev-x-");
        assert_eq!(default_session_name(&"p".repeat(100)).len(), 64);
    }

    #[test]
    fn stsmfa_target_parses_credential_process_lines() {
        assert_eq!(
            stsmfa_target("stsmfa credential-process work").as_deref(),
            Some("work")
        );
        assert_eq!(
            stsmfa_target("/usr/local/bin/stsmfa credential-process --duration 1h work").as_deref(),
            Some("work")
        );
        assert_eq!(stsmfa_target("aws-vault export work"), None);
    }
}
