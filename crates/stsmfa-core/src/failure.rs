//! A lock holder's failure, left for the processes that waited on its lock.
//! Without it every waiter would try in turn once the lock is free: one
//! code (and one prompt) per waiter, each failing the same way, and the last
//! ones giving up on the lock timeout with the cause hidden.
//!
//! One small JSON file per lock in the state directory, holding the message
//! and hints (never a secret) and when it was written. Only a record written
//! after a waiter began to wait counts, so an old failure never stops a new
//! attempt.

use crate::error::Fail;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize)]
struct Record {
    /// Unix time in milliseconds: waiters that start within the same second
    /// as a failure must still tell whether it came before them.
    at_ms: u64,
    profile: String,
    message: String,
    hints: Vec<String>,
}

fn file(lock: &str) -> String {
    format!("{}.failed", crate::lock::file_name(lock))
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Leaves `fail` (of a process getting a session for `profile`) for the
/// waiters on `lock`. Failing to write only loses this help.
pub fn record(dir: &Path, lock: &str, profile: &str, fail: &Fail, at: SystemTime) {
    let rec = Record {
        at_ms: millis(at),
        profile: profile.to_owned(),
        message: fail.message.clone(),
        hints: fail.hints.clone(),
    };
    let bytes = serde_json::to_vec(&rec).expect("plain data serialises");
    let _ = crate::statedir::write_atomic(dir, &file(lock), &bytes);
}

/// A failure another process left.
pub struct Left {
    /// The profile that process was getting a session for.
    pub profile: String,
    /// Its failure as it reported it.
    pub fail: Fail,
}

impl Left {
    /// Worded as this process's own error.
    pub fn reported(&self) -> Fail {
        let fail = Fail::new(format!(
            "another stsmfa process getting a session for profile '{}' failed: {}",
            self.profile, self.fail.message
        ));
        let fail = self.fail.hints.iter().cloned().fold(fail, Fail::hint);
        fail.hint("this process waited for it and did not try again, so as not to spend another code: run again to retry")
    }
}

/// The failure a holder of `lock` left at or after `since`.
pub fn since(dir: &Path, lock: &str, since: SystemTime) -> Option<Left> {
    let bytes = crate::statedir::read(dir, &file(lock))?;
    let rec: Record = serde_json::from_slice(&bytes).ok()?;
    if rec.at_ms < millis(since) {
        return None;
    }
    let fail = rec
        .hints
        .into_iter()
        .fold(Fail::new(rec.message), Fail::hint);
    Some(Left {
        profile: rec.profile,
        fail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_records_since_the_wait_began_count() {
        let dir = std::env::temp_dir().join(format!("stsmfa-failure-{}", std::process::id()));
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(since(&dir, "work", t).is_none(), "no record yet");
        let f = Fail::new("AWS answered HTTP 500 (InternalFailure): try again").hint("wait");
        record(&dir, "work", "work", &f, t + Duration::from_millis(1));
        let got = since(&dir, "work", t)
            .expect("a newer record counts")
            .reported();
        assert!(
            got.message.contains("another stsmfa process"),
            "{}",
            got.message
        );
        assert!(got.message.contains("HTTP 500"), "{}", got.message);
        assert_eq!(got.hints[0], "wait");
        assert!(got.hints.len() == 2);
        assert!(
            since(&dir, "work", t + Duration::from_millis(2)).is_none(),
            "an older record does not"
        );
        assert!(since(&dir, "other", t).is_none(), "per lock");
        crate::statedir::write_atomic(&dir, &file("work"), b"not json").unwrap();
        assert!(since(&dir, "work", t).is_none(), "a corrupt record is none");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
