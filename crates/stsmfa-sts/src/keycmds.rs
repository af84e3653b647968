//! `add`, `import`, `remove` and `list`: long-term keys into, out of and in
//! the key store. Each change clears the profile's cached sessions, so that
//! a cache hit never has to read the key store (see `KeySource`).

use crate::aws::{AwsSts, ClientSettings};
use crate::keys::{self, Dirs, Index, KeyStore, StoredKeys, index};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use stsmfa_core::cache::Cache;
use stsmfa_core::cli::{AddArgs, ImportArgs, ListArgs, RemoveArgs};
use stsmfa_core::config;
use stsmfa_core::credentials::{LongTermKeys, unix};
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::profiles::{self, FileKind, ProfileSet, edit, keys_edit};
use stsmfa_core::prompt::Tty;
use stsmfa_core::secret::{Secret, mask_key_id};
use stsmfa_core::store::{self, StoreChoice};
use stsmfa_core::sts::Sts;
use stsmfa_core::{escape, note, real_env, warn};

fn dirs() -> Result<Dirs, Fail> {
    Dirs::real(config::state_dir(&real_env)?)
}

/// Deletes the cached sessions got with `profile`'s keys (its role sessions
/// too), from the session store; a store that does not open is a warning.
pub fn clear_sessions(profile: &str, choice: Option<StoreChoice>) {
    let cleared = config::store_choice(choice, &real_env).and_then(|c| {
        let st = store::open_quiet(c)?;
        let state = config::state_dir(&real_env)?;
        Cache::new(st.as_ref(), &state)
            .remove(|k| k.involves(profile))
            .map_err(|e| e.to_fail())
    });
    match cleared {
        Ok(gone) if !gone.is_empty() => stsmfa_core::diag(&format!(
            "cleared {} cached session(s) of profile {profile}",
            gone.len()
        )),
        Ok(_) => {}
        Err(e) => stsmfa_core::warn_fail(
            &format!("the cached sessions of profile {profile} were not cleared: "),
            &e,
        ),
    }
}

/// Stores keys and notes them in the index.
pub fn store_keys(
    dirs: &Dirs,
    store: &dyn KeyStore,
    profile: &str,
    keys: &StoredKeys,
    rotated: bool,
) -> Result<(), Fail> {
    store.put(profile, keys)?;
    let _lock = index::lock(dirs)?;
    let now = unix(SystemTime::now());
    index::record(dirs, profile, |old| index::Line {
        key: mask_key_id(&keys.current.access_key_id),
        store: store.name().to_owned(),
        // A rotation keeps the date the profile's key was first stored.
        added: if rotated {
            old.map_or(now, |o| o.added)
        } else {
            now
        },
        rotated: if rotated {
            Some(now)
        } else {
            old.and_then(|o| o.rotated)
        },
    })
}

/// Refuses what cannot be an IAM user's long-term key.
fn check_key_id(id: &str) -> Result<(), Fail> {
    if id.starts_with("ASIA") {
        return Err(fail!(
            "{} is a temporary (session) key, not an IAM user's long-term key",
            mask_key_id(id)
        )
        .hint("give the access key of the IAM user (it starts with AKIA)"));
    }
    let ok = (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(
            fail!("'{}' is not an access key ID", escape(&mask_key_id(id))).hint(
                "an access key ID is 16 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE",
            ),
        );
    }
    Ok(())
}

/// The keys `add` stores: from the environment with `--env`, else typed
/// on the terminal (the secret not echoed).
fn keys_to_add(args: &AddArgs) -> Result<LongTermKeys, Fail> {
    if args.env {
        let (Some(id), Some(secret)) = (
            real_env("AWS_ACCESS_KEY_ID"),
            real_env("AWS_SECRET_ACCESS_KEY"),
        ) else {
            return Err(
                fail!("--env needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to be set")
                    .hint("set both, or leave out --env to type them"),
            );
        };
        if real_env("AWS_SESSION_TOKEN").is_some() {
            return Err(fail!("AWS_SESSION_TOKEN is set: these are temporary credentials, not an IAM user's long-term key")
                .hint("unset AWS_SESSION_TOKEN and give the IAM user's access key"));
        }
        return Ok(LongTermKeys {
            access_key_id: id.trim().to_owned(),
            secret_access_key: Secret::new(secret.trim().to_owned()),
        });
    }
    let mut term = Tty::open()?.ok_or_else(|| {
        fail!("add needs a terminal to ask for the key")
            .hint("or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and use --env")
    })?;
    term.say(&format!(
        "Access key ID for profile {}: ",
        escape(&args.profile)
    ));
    let id = term
        .line()?
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| fail!("no access key ID entered"))?;
    check_key_id(&id)?;
    let secret = term
        .hidden("Secret access key (not shown): ")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    if secret.is_empty() {
        return Err(fail!("no secret access key entered"));
    }
    Ok(LongTermKeys {
        access_key_id: id,
        secret_access_key: Secret::new(secret),
    })
}

/// GetCallerIdentity with the keys (allowed without MFA): the IAM user's ARN.
fn check_with_aws(
    profile: &str,
    region: Option<String>,
    keys: &LongTermKeys,
) -> Result<String, Fail> {
    let client = ClientSettings {
        profile: profile.to_owned(),
        region,
        keys: keys.clone(),
        timeout: Duration::from_secs(30),
    };
    let id = AwsSts::new(&client)?
        .caller_identity()
        .map_err(|e| e.to_fail(None).hint("nothing was stored"))?;
    if id.user_name().is_none() {
        return Err(fail!("these keys are not an IAM user's ({})", id.arn)
            .hint("stsmfa keeps IAM users' keys; nothing was stored"));
    }
    Ok(id.arn)
}

pub fn add(args: &AddArgs) -> Result<u8, Fail> {
    let choice = keys::choice(args.key_store.key_store.as_deref())?;
    let keys = keys_to_add(args)?;
    check_key_id(&keys.access_key_id)?;
    let set = profiles::load_real()?;
    let region = args
        .region
        .clone()
        .or_else(|| real_env("AWS_REGION"))
        .or_else(|| real_env("AWS_DEFAULT_REGION"))
        .or_else(|| {
            set.get_profile(&args.profile)
                .and_then(|p| p.get("region"))
                .map(str::to_owned)
        });
    let arn = check_with_aws(&args.profile, region, &keys)?;
    note(&format!(
        "the key {} belongs to {arn}",
        mask_key_id(&keys.access_key_id)
    ));
    let dirs = dirs()?;
    let store = keys::open(choice, &dirs)?;
    store_keys(
        &dirs,
        store.as_ref(),
        &args.profile,
        &StoredKeys::new(keys.clone()),
        false,
    )?;
    clear_sessions(&args.profile, None);
    note(&format!(
        "stored the key {} of profile {} in the key store ({})",
        mask_key_id(&keys.access_key_id),
        args.profile,
        store.name()
    ));
    if set.get_profile(&args.profile).is_none() {
        add_profile_section(&args.profile, args.yes)?;
    } else if set
        .get_profile(&args.profile)
        .and_then(|p| p.get("aws_access_key_id"))
        .is_some()
    {
        warn(&format!(
            "the AWS files still hold a key for profile {}: the key store's is used; `stsmfa import {}` removes the file's copy",
            args.profile, args.profile
        ));
    }
    Ok(0)
}

/// Creates `[profile NAME]` in ~/.aws/config, after asking.
fn add_profile_section(profile: &str, yes: bool) -> Result<(), Fail> {
    let [config_path, _] = profiles::config_files(&real_env);
    let path = edit::resolve_links(&config_path);
    let section = edit::section_name(profile);
    if !yes {
        let asked = match Tty::open()? {
            Some(mut t) => Some(t.yes(&format!(
                "Add [{}] to {}? [Y/n] ",
                escape(&section),
                escape(&path.display().to_string())
            ))?),
            None => None,
        };
        if asked != Some(true) {
            note(&format!(
                "{} has no [{section}]: add it (with region, mfa_serial) before using the profile, or run again with --yes",
                path.display()
            ));
            return Ok(());
        }
    }
    let old = std::fs::read_to_string(&path).ok();
    let mut new = old.clone().unwrap_or_default();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!("[{section}]\n"));
    edit::write_atomically(&path, old.as_deref(), &new)?;
    note(&format!("added [{section}] to {}", path.display()));
    Ok(())
}

/// Why a profile of the credentials file is not imported.
fn importable(text_set: &ProfileSet, name: &str) -> Result<LongTermKeys, String> {
    let Some(p) = text_set.get_profile(name) else {
        return Err("it is not in the credentials file".into());
    };
    let get = |k: &str| p.get(k).map(str::trim).filter(|v| !v.is_empty());
    if get("aws_session_token").is_some() {
        return Err(
            "it holds temporary credentials (aws_session_token), not a long-term key".into(),
        );
    }
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => {
            check_key_id(id).map_err(|f| f.message)?;
            Ok(LongTermKeys {
                access_key_id: id.to_owned(),
                secret_access_key: Secret::new(secret.to_owned()),
            })
        }
        (None, None) => Err("it has no key in the credentials file".into()),
        _ => Err("it has only one of aws_access_key_id and aws_secret_access_key".into()),
    }
}

pub fn import(args: &ImportArgs) -> Result<u8, Fail> {
    let choice = keys::choice(args.key_store.key_store.as_deref())?;
    let [_, cred_path] = profiles::config_files(&real_env);
    let path = edit::resolve_links(&cred_path);
    let shown = cred_path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        fail!("cannot read {shown}: {e}").hint(
            "import moves keys from the AWS credentials file; `stsmfa add` stores a key you type",
        )
    })?;
    let set = ProfileSet::parse(&[(FileKind::Credentials, &text)]).map_err(|(_, e)| {
        fail!("cannot read {shown}: {e}")
            .hint("fix that line (the AWS CLI and SDKs refuse the file too); nothing was changed")
    })?;
    let names: Vec<String> = if args.all {
        let mut all: Vec<String> = set
            .profiles()
            .filter(|n| {
                set.get_profile(n)
                    .and_then(|p| p.get("aws_access_key_id"))
                    .is_some()
            })
            .map(str::to_owned)
            .collect();
        all.sort();
        all
    } else {
        args.profiles.clone()
    };
    for n in &names {
        if !args.all && set.get_profile(n).is_none() {
            return Err(fail!("profile '{n}' is not in {shown}").hint("nothing was changed"));
        }
    }
    let dirs = dirs()?;
    let store = keys::open(choice, &dirs)?;
    let mut moved = Vec::new();
    for name in &names {
        match importable(&set, name) {
            Ok(keys) => {
                store_keys(
                    &dirs,
                    store.as_ref(),
                    name,
                    &StoredKeys::new(keys.clone()),
                    false,
                )?;
                moved.push((name.clone(), keys.access_key_id));
            }
            Err(why) => note(&format!("skipped profile {name}: {why}")),
        }
    }
    if moved.is_empty() {
        note(&format!("no key moved; {shown} was not changed"));
        return Ok(if args.all { 0 } else { 1 });
    }
    // Stored first: a crash now leaves the keys in both places (the key
    // store's win), never in neither.
    let mut new = text.clone();
    for (name, _) in &moved {
        new = keys_edit::remove_keys(&new, name).0;
    }
    // No backup: it would hold the very secrets being moved.
    edit::write_atomically(&path, None, &new).map_err(|f| {
        f.hint(format!("the keys are in the key store; remove the aws_access_key_id and aws_secret_access_key lines from {shown} by hand"))
    })?;
    for (name, id) in &moved {
        clear_sessions(name, None);
        note(&format!(
            "moved the key {} of profile {name} from {shown} to the key store ({})",
            mask_key_id(id),
            store.name()
        ));
    }
    Ok(0)
}

pub fn remove(args: &RemoveArgs) -> Result<u8, Fail> {
    let dirs = dirs()?;
    let Some(line) = Index::load(&dirs).get(&args.profile).cloned() else {
        return Err(
            fail!("profile '{}' has no keys in the key store", args.profile)
                .hint("`stsmfa list` shows the profiles with stored keys"),
        );
    };
    if !args.yes {
        let mut t = Tty::open()?.ok_or_else(|| {
            fail!("remove asks before deleting a key, and there is no terminal")
                .hint("run it with --yes")
        })?;
        if !t.yes(&format!(
            "Delete the key {} of profile {} from the key store ({})? It is not deleted in AWS. [Y/n] ",
            line.key,
            escape(&args.profile),
            line.store
        ))? {
            note("nothing was deleted");
            return Ok(1);
        }
    }
    let store = keys::open_named(&line.store, &dirs)?;
    store.delete(&args.profile)?;
    {
        let _lock = index::lock(&dirs)?;
        index::forget(&dirs, &args.profile)?;
    }
    clear_sessions(&args.profile, args.store);
    note(&format!(
        "deleted the key {} of profile {} from the key store ({}) and its cached sessions",
        line.key, args.profile, line.store
    ));
    Ok(0)
}

#[derive(Serialize)]
struct Row {
    profile: String,
    access_key_id: String,
    key_store: String,
    added: String,
    rotated: Option<String>,
    session_cached: bool,
}

pub fn list(args: &ListArgs) -> Result<u8, Fail> {
    let dirs = dirs()?;
    let index = Index::load(&dirs);
    let now = unix(SystemTime::now());
    let sessions = config::store_choice(args.store, &real_env)
        .and_then(store::open_quiet)
        .map(|st| Cache::new(st.as_ref(), &dirs.state).index())
        .unwrap_or_default();
    let rows: Vec<Row> = index
        .profiles
        .iter()
        .map(|(p, l)| Row {
            profile: p.clone(),
            access_key_id: l.key.clone(),
            key_store: l.store.clone(),
            added: stsmfa_core::credentials::rfc3339(l.added),
            rotated: l.rotated.map(stsmfa_core::credentials::rfc3339),
            session_cached: sessions
                .iter()
                .any(|i| i.key.source() == p && i.expiration > now),
        })
        .collect();
    if args.json {
        stsmfa_core::emit(&(serde_json::to_string_pretty(&rows).expect("plain data") + "\n"));
        return Ok(0);
    }
    if rows.is_empty() {
        note(
            "no profile has keys in the key store (`stsmfa add PROFILE` or `stsmfa import PROFILE`)",
        );
        return Ok(0);
    }
    let mut out = format!(
        "{:<20} {:<22} {:<15} {:<21} {:<21} {}\n",
        "PROFILE", "ACCESS KEY", "KEY STORE", "ADDED", "ROTATED", "SESSION"
    );
    for r in &rows {
        out += &format!(
            "{:<20} {:<22} {:<15} {:<21} {:<21} {}\n",
            escape(&r.profile),
            r.access_key_id,
            r.key_store,
            r.added,
            r.rotated.as_deref().unwrap_or("-"),
            if r.session_cached { "cached" } else { "-" }
        );
    }
    stsmfa_core::emit(&out);
    Ok(0)
}

/// The file (credentials, else config) that holds `profile`'s key lines.
pub fn key_file(profile: &str) -> Option<(PathBuf, String)> {
    let [config_path, cred_path] = profiles::config_files(&real_env);
    [cred_path, config_path].into_iter().find_map(|p| {
        let path = edit::resolve_links(&p);
        let text = std::fs::read_to_string(&path).ok()?;
        (keys_edit::remove_keys(&text, profile).1 > 0).then_some((path, text))
    })
}
