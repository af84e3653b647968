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
}

pub fn status(args: &StatusArgs) -> Result<u8, Fail> {
    let store = open_store(args.store)?;
    let state_dir = config::state_dir(&crate::real_env)?;
    let cache = Cache::new(store.as_ref(), &state_dir);
    let only = args.profile.as_deref().map(cached_profile);
    let now = unix(SystemTime::now());
    let mut rows = Vec::new();
    let mut items: Vec<Indexed> = cache.index();
    items.sort_by(|a, b| a.key.profile.cmp(&b.key.profile));
    for item in items {
        if only.as_deref().is_some_and(|p| p != item.key.profile) {
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
    let mut out = format!(
        "{:<16} {:<44} {:<14} {:<11} {:<21} {}\n",
        "PROFILE", "MFA SERIAL", "STORE", "KEY", "EXPIRES (UTC)", "LEFT"
    );
    for r in &rows {
        let left = match r.seconds_left {
            0 => "expired".to_owned(),
            s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        };
        out += &format!(
            "{:<16} {:<44} {:<14} {:<11} {:<21} {}\n",
            r.profile, r.mfa_serial, r.store, r.access_key_id, r.expiration, left
        );
    }
    crate::emit(&out);
    Ok(0)
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
    let gone = cache
        .remove(|k| profile.as_deref().is_none_or(|p| p == k.profile))
        .map_err(|e| e.to_fail())?;
    match (&profile, gone.len()) {
        (Some(p), 0) => crate::note(&format!(
            "no cached session for profile {p} in {}",
            store.name()
        )),
        (None, 0) => crate::note(&format!("no cached sessions in {}", store.name())),
        _ => {
            for g in &gone {
                crate::note(&format!(
                    "removed the session of profile {} ({}) from {}",
                    g.key.profile,
                    g.key.serial,
                    store.name()
                ));
            }
        }
    }
    Ok(0)
}
