//! Cached sessions of the profile and their time left (never a secret).

use std::time::SystemTime;
use stsmfa_core::cache::Cache;
use stsmfa_core::config::Settings;
use stsmfa_core::credentials::{rfc3339, unix};
use stsmfa_core::doctor_report::Check;
use stsmfa_core::store::CredentialStore;

pub fn checks(s: &Settings, now: SystemTime) -> Vec<Check> {
    // The store line already said what is wrong with a store that fails.
    match stsmfa_core::store::open_quiet(s.store) {
        Ok(store) => lines(s, store.as_ref(), now),
        Err(_) => vec![],
    }
}

fn lines(s: &Settings, store: &dyn CredentialStore, now: SystemTime) -> Vec<Check> {
    let cache = Cache::new(store, &s.state_dir);
    let now = unix(now);
    let mut out: Vec<Check> = cache
        .index()
        .into_iter()
        .filter(|i| i.key.involves(&s.profile) && i.key.source_key_id == s.keys.cache_id())
        .map(|i| {
            let what = match &i.key.role {
                Some(r) => format!("role session of {} ({})", i.key.profile, r.arn),
                None => format!("MFA session of {}", i.key.profile),
            };
            if i.expiration > now {
                Check::ok(
                    "sessions",
                    format!(
                        "{what}: {} left (until {})",
                        left(i.expiration - now),
                        rfc3339(i.expiration)
                    ),
                )
            } else {
                Check::ok(
                    "sessions",
                    format!(
                        "{what}: expired at {}; the next call asks for a code",
                        rfc3339(i.expiration)
                    ),
                )
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Check::ok(
            "sessions",
            format!(
                "no cached session for {}: the next call asks for a code",
                s.served_profile()
            ),
        ));
    }
    out
}

/// `11h 58m`, `14m`.
fn left(secs: u64) -> String {
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_as_hours_and_minutes() {
        assert_eq!(left(12 * 3600 - 90), "11h 58m");
        assert_eq!(left(14 * 60 + 5), "14m");
    }
}
