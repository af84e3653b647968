//! Session credentials, their cache-entry form, and expiry arithmetic.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Temporary credentials from `GetSessionToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    pub session_token: Secret<String>,
    /// Unix seconds.
    pub expiration: u64,
}

/// Long-term IAM user keys from the source profile.
#[derive(Debug, Clone)]
pub struct LongTermKeys {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
}

/// Where the source profile's long-term keys are. Resolved without reading
/// the key store, so that a cache hit stays one store read: keys in the AWS
/// files are known at once; otherwise `stsmfa-sts` reads the key store on a
/// miss.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `aws_access_key_id` and `aws_secret_access_key` in the AWS files.
    File(LongTermKeys),
    /// No keys in the files: the key store's entry for the profile.
    Store,
}

/// What names a session got with keys from the key store in its cache key,
/// instead of their key ID (unknown on a hit). `add`, `import`, `rotate`
/// and `remove` clear the profile's sessions, so no session outlives the
/// key it came from.
pub const KEY_STORE_MARKER: &str = "key-store";

impl KeySource {
    /// The long-term key ID sessions are cached under: the file's key, or
    /// [`KEY_STORE_MARKER`].
    pub fn cache_id(&self) -> &str {
        match self {
            KeySource::File(k) => &k.access_key_id,
            KeySource::Store => KEY_STORE_MARKER,
        }
    }

    /// The keys in the AWS files, if any.
    pub fn in_file(&self) -> Option<&LongTermKeys> {
        match self {
            KeySource::File(k) => Some(k),
            KeySource::Store => None,
        }
    }
}

/// What is stored in the keyring: compact JSON, well under Windows' 2,560 bytes.
/// Short field names keep it small; `v` lets a future format be told apart.
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    v: u8,
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    sk: std::borrow::Cow<'a, str>,
    st: std::borrow::Cow<'a, str>,
    exp: u64,
}

/// The size a stored entry may reach (the Windows Credential Manager limit, with room).
pub const MAX_ENTRY_BYTES: usize = 2500;

/// `10000-01-01T00:00:00Z`: RFC 3339 has four-digit years, so no expiry of a
/// real session is at or past this (nor can it be formatted).
pub const MAX_EXPIRATION: u64 = 253_402_300_800;

impl Session {
    /// The keyring value. Never logged.
    pub fn to_entry(&self) -> Vec<u8> {
        let e = Entry {
            v: 1,
            id: self.access_key_id.as_str().into(),
            sk: self.secret_access_key.expose().as_str().into(),
            st: self.session_token.expose().as_str().into(),
            exp: self.expiration,
        };
        serde_json::to_vec(&e).expect("serialising plain strings cannot fail")
    }

    /// Parses a keyring value; `None` for anything that is not a well-formed
    /// entry of ours (a corrupt or foreign entry is a cache miss), including an
    /// expiry no session can have (the epoch, or past year 9999).
    pub fn from_entry(bytes: &[u8]) -> Option<Session> {
        let e: Entry = serde_json::from_slice(bytes).ok()?;
        let plausible = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if e.v != 1
            || !plausible(&e.id)
            || !plausible(&e.sk)
            || !plausible(&e.st)
            || !(1..MAX_EXPIRATION).contains(&e.exp)
        {
            return None;
        }
        Some(Session {
            access_key_id: e.id.into_owned(),
            secret_access_key: Secret::new(e.sk.into_owned()),
            session_token: Secret::new(e.st.into_owned()),
            expiration: e.exp,
        })
    }

    /// Seconds left at `now`, zero once expired.
    pub fn seconds_left(&self, now: SystemTime) -> u64 {
        self.expiration.saturating_sub(unix(now))
    }

    /// True while the session has more than `min_ttl` left: botocore re-runs a
    /// helper whose credentials have under 15 minutes left, so serving one inside
    /// the margin would only make every AWS call run us twice.
    pub fn is_fresh(&self, now: SystemTime, min_ttl: Duration) -> bool {
        self.seconds_left(now) > min_ttl.as_secs()
    }

    /// `2026-11-23T09:43:13Z`.
    pub fn expiration_rfc3339(&self) -> String {
        rfc3339(self.expiration)
    }
}

/// Unix seconds of a `SystemTime` (0 before the epoch).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 in UTC with a `Z`, to the second. Times past the last second
/// RFC 3339 can write (9999-12-31T23:59:59Z) are written as that, so no
/// value, however corrupt, can panic here.
pub fn rfc3339(secs: u64) -> String {
    let t = UNIX_EPOCH
        .checked_add(Duration::from_secs(secs.min(MAX_EXPIRATION - 1)))
        .unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Session {
        Session {
            access_key_id: "ASIAEXAMPLEKEYID1234".into(),
            secret_access_key: Secret::new("wJalr/XUtn+FEMI=K7MDENG".into()),
            session_token: Secret::new("FwoGZXIvYXdzE\"quote'".into()),
            expiration: 1_795_000_000,
        }
    }

    #[test]
    fn entry_round_trips() {
        let s = sample();
        let back = Session::from_entry(&s.to_entry()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn corrupt_or_foreign_entries_are_misses() {
        for bad in [
            &b""[..],
            b"garbage",
            b"{}",
            b"{\"v\":2,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":1}",
            b"{\"v\":1,\"id\":\"\",\"sk\":\"b\",\"st\":\"c\",\"exp\":1}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":0}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":253402300800}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":18446744073709551615}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":18446744073709551616}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":-1}",
            b"{\"v\":1,\"id\":\"a\",\"sk\":\"b\",\"st\":\"c\",\"exp\":1e30}",
            b"\xff\xfe",
        ] {
            assert!(
                Session::from_entry(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn freshness_respects_margin() {
        let s = sample();
        let at = |left: u64| UNIX_EPOCH + Duration::from_secs(s.expiration - left);
        let margin = Duration::from_secs(900);
        assert!(s.is_fresh(at(901), margin));
        assert!(!s.is_fresh(at(900), margin));
        assert!(!s.is_fresh(UNIX_EPOCH + Duration::from_secs(s.expiration + 5), margin));
        assert!(s.is_fresh(at(61), Duration::from_secs(60)));
        assert_eq!(
            s.seconds_left(UNIX_EPOCH + Duration::from_secs(s.expiration + 5)),
            0
        );
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(1_795_427_393), "2026-11-23T09:49:53Z");
    }

    #[test]
    fn rfc3339_never_panics_and_clamps_to_year_9999() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(MAX_EXPIRATION - 1), "9999-12-31T23:59:59Z");
        for secs in [MAX_EXPIRATION, u64::MAX / 2, i64::MAX as u64, u64::MAX] {
            assert_eq!(rfc3339(secs), "9999-12-31T23:59:59Z");
        }
    }

    #[test]
    fn last_plausible_expiry_is_a_session() {
        let mut s = sample();
        s.expiration = MAX_EXPIRATION - 1;
        let back = Session::from_entry(&s.to_entry()).unwrap();
        assert_eq!(back.expiration_rfc3339(), "9999-12-31T23:59:59Z");
        assert!(back.is_fresh(SystemTime::now(), Duration::from_secs(900)));
    }

    #[test]
    fn entry_size_stays_under_limit_for_long_tokens() {
        let mut s = sample();
        s.session_token = Secret::new("A".repeat(1200));
        assert!(s.to_entry().len() < MAX_ENTRY_BYTES);
    }
}
