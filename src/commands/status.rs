//! `status` and `clear`: what is cached, and deleting it. Never a secret.

use crate::cache::{Cache, Indexed};
use crate::cli::{ClearArgs, StatusArgs, StoreChoice};
use crate::config;
use crate::credentials::{rfc3339, unix};
use crate::error::Fail;
use crate::secret::mask_key_id;
use crate::store::{self, CredentialStore};
use std::time::SystemTime;

/// `--store` > `STSMFA_STORE` > auto.
fn open_store(
    choice: Option<StoreChoice>,
    verbose: bool,
) -> Result<Box<dyn CredentialStore>, Fail> {
    store::open(config::store_choice(choice, &config::real_env)?, verbose)
}

pub fn status(args: &StatusArgs, verbose: bool) -> Result<u8, Fail> {
    let store = open_store(args.store, verbose)?;
    let cache = Cache {
        store: store.as_ref(),
    };
    let now = unix(SystemTime::now());
    let mut rows = Vec::new();
    let mut items: Vec<Indexed> = cache.index();
    items.sort_by(|a, b| a.key.profile.cmp(&b.key.profile));
    for item in items {
        if args
            .profile
            .as_deref()
            .is_some_and(|p| p != item.key.profile)
        {
            continue;
        }
        // The entry itself is the truth; the index may lag behind.
        let Some(session) = cache.load(&item.key).map_err(|e| e.to_fail())? else {
            continue;
        };
        rows.push(serde_json::json!({
            "profile": item.key.profile,
            "mfa_serial": item.key.serial,
            "store": store.name(),
            "access_key_id": mask_key_id(&session.access_key_id),
            "expiration": rfc3339(session.expiration),
            "seconds_left": session.expiration.saturating_sub(now),
        }));
    }
    if args.json {
        crate::emit(&(serde_json::to_string_pretty(&rows).expect("json values serialise") + "\n"));
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
        let left = r["seconds_left"].as_u64().unwrap_or(0);
        let left = if left == 0 {
            "expired".to_owned()
        } else {
            format!("{}h{:02}m", left / 3600, left % 3600 / 60)
        };
        out += &format!(
            "{:<16} {:<44} {:<14} {:<11} {:<21} {}\n",
            r["profile"].as_str().unwrap_or(""),
            r["mfa_serial"].as_str().unwrap_or(""),
            r["store"].as_str().unwrap_or(""),
            r["access_key_id"].as_str().unwrap_or(""),
            r["expiration"].as_str().unwrap_or(""),
            left
        );
    }
    crate::emit(&out);
    Ok(0)
}

pub fn clear(args: &ClearArgs, verbose: bool) -> Result<u8, Fail> {
    let store = open_store(args.store, verbose)?;
    let cache = Cache {
        store: store.as_ref(),
    };
    let profile =
        (!args.all).then(|| config::profile_name(args.profile.as_deref(), &config::real_env));
    let gone = cache
        .remove(|k| profile.as_deref().is_none_or(|p| p == k.profile))
        .map_err(|e| e.to_fail())?;
    match (&profile, gone.len()) {
        (Some(p), 0) => crate::diag(&format!(
            "no cached session for profile {p} in {}",
            store.name()
        )),
        (None, 0) => crate::diag(&format!("no cached sessions in {}", store.name())),
        _ => {
            for g in &gone {
                crate::diag(&format!(
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
