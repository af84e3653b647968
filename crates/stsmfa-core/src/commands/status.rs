//! `status` and `clear`: what is cached, and deleting it. Never a secret.

use crate::cache::{Cache, Indexed};
use crate::cli::{ClearArgs, StatusArgs};
use crate::config;
use crate::credentials::{rfc3339, unix};
use crate::error::Fail;
use crate::secret::mask_key_id;
use crate::store::StoreChoice;
use crate::store::{self, CredentialStore};
use serde::Serialize;
use std::time::SystemTime;

/// `--store` > `STSMFA_STORE` > auto.
fn open_store(choice: Option<StoreChoice>) -> Result<Box<dyn CredentialStore>, Fail> {
    store::open(config::store_choice(choice, &crate::real_env)?)
}

/// The profile whose sessions are meant: `work-mfa`, whose
/// `credential_process` is `stsmfa credential-process work`, means `work`,
/// just as `credential-process work-mfa` serves `work`'s session.
fn cached_profile(name: &str) -> String {
    match crate::profiles::load_real() {
        Ok(profiles) => config::session_profile(name, &profiles),
        Err(_) => name.to_owned(),
    }
}

/// One row of `status` (and of `status --json`).
#[derive(Serialize)]
struct Row {
    profile: String,
    mfa_serial: String,
    store: &'static str,
    access_key_id: String,
    expiration: String,
    seconds_left: u64,
    /// Role sessions: the role and the profile whose keys (and MFA
    /// session) it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_profile: Option<String>,
}

pub fn status(args: &StatusArgs) -> Result<u8, Fail> {
    let store = open_store(args.store)?;
    let state_dir = config::state_dir(&crate::real_env)?;
    let cache = Cache::new(store.as_ref(), &state_dir);
    let only = args.profile.as_deref().map(cached_profile);
    let now = unix(SystemTime::now());
    let mut rows = Vec::new();
    let mut items: Vec<Indexed> = cache.index();
    // Each source profile, then the roles got through it.
    items.sort_by(|a, b| {
        (a.key.source(), a.key.role.is_some(), &a.key.profile).cmp(&(
            b.key.source(),
            b.key.role.is_some(),
            &b.key.profile,
        ))
    });
    for item in items {
        if only.as_deref().is_some_and(|p| !item.key.involves(p)) {
            continue;
        }
        // The entry itself is the truth; the index may lag behind.
        let Some(session) = cache.load(&item.key).map_err(|e| e.to_fail())? else {
            continue;
        };
        rows.push(Row {
            store: store.name(),
            access_key_id: mask_key_id(&session.access_key_id),
            expiration: rfc3339(session.expiration),
            seconds_left: session.expiration.saturating_sub(now),
            source_profile: item.key.role.as_ref().map(|_| item.key.source().to_owned()),
            role_arn: item.key.role.as_ref().map(|r| r.arn.clone()),
            profile: item.key.profile,
            mfa_serial: item.key.serial,
        });
    }
    if args.json {
        crate::emit(&(serde_json::to_string_pretty(&rows).expect("plain rows serialise") + "\n"));
        return Ok(0);
    }
    if rows.is_empty() {
        crate::emit(&format!("no cached sessions in {}\n", store.name()));
        return Ok(0);
    }
    crate::emit(&table(&rows));
    Ok(0)
}

/// The text table; the SOURCE and ROLE columns only when a role session is
/// listed.
fn table(rows: &[Row]) -> String {
    let roles = rows.iter().any(|r| r.role_arn.is_some());
    let line = |cols: [&str; 8]| {
        let mut l = format!(
            "{:<16} {:<44} {:<14} {:<11} {:<21} {:<6}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
        );
        if roles {
            l += &format!(" {:<16} {}", cols[6], cols[7]);
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line([
        "PROFILE",
        "MFA SERIAL",
        "STORE",
        "KEY",
        "EXPIRES (UTC)",
        "LEFT",
        "SOURCE",
        "ROLE",
    ]);
    for r in rows {
        let left = match r.seconds_left {
            0 => "expired".to_owned(),
            s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        };
        out += &line([
            &r.profile,
            &r.mfa_serial,
            r.store,
            &r.access_key_id,
            &r.expiration,
            &left,
            r.source_profile.as_deref().unwrap_or("-"),
            r.role_arn.as_deref().unwrap_or("-"),
        ]);
    }
    out
}

pub fn clear(args: &ClearArgs) -> Result<u8, Fail> {
    let store = open_store(args.store)?;
    let state_dir = config::state_dir(&crate::real_env)?;
    let cache = Cache::new(store.as_ref(), &state_dir);
    let profile = (!args.all).then(|| {
        cached_profile(&config::profile_name(
            args.profile.as_deref(),
            &crate::real_env,
        ))
    });
    // A source profile's role sessions go with its MFA session.
    let gone = cache
        .remove(|k| profile.as_deref().is_none_or(|p| k.involves(p)))
        .map_err(|e| e.to_fail())?;
    match (&profile, gone.len()) {
        (Some(p), 0) => crate::note(&format!(
            "no cached session for profile {p} in {}",
            store.name()
        )),
        (None, 0) => crate::note(&format!("no cached sessions in {}", store.name())),
        _ => {
            for g in &gone {
                match &g.key.role {
                    None => crate::note(&format!(
                        "removed the session of profile {} ({}) from {}",
                        g.key.profile,
                        g.key.serial,
                        store.name()
                    )),
                    Some(r) => crate::note(&format!(
                        "removed the role session of profile {} ({}, source profile {}) from {}",
                        g.key.profile,
                        r.arn,
                        g.key.source(),
                        store.name()
                    )),
                }
            }
        }
    }
    Ok(0)
}
