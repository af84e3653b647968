//! Property tests for every parser of outside input: the keyring entry,
//! durations, MFA codes, STS error handling, the config-file edit and the
//! shell and dotenv quoting. `PROPTEST_CASES=100000 cargo test --test props` runs them
//! long (see README, "Fuzzing").

use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stsmfa_core::config::{parse_duration, session_duration};
use stsmfa_core::credentials::{MAX_EXPIRATION, Session, rfc3339};
use stsmfa_core::output::EnvFormat;
use stsmfa_core::output::{self, env_lines, sh_quote};
use stsmfa_core::profiles::edit::add_mfa_serial;
use stsmfa_core::prompt::parse_code;
use stsmfa_core::secret::Secret;
use stsmfa_core::sts::StsError;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/+=]{1,1200}"
}

/// Expiry values a corrupt entry may hold: anything, and the edges.
fn any_exp() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(u64::MAX),
        (MAX_EXPIRATION - 3)..=(MAX_EXPIRATION + 3),
        1u64..MAX_EXPIRATION,
    ]
}

/// A JSON value where the entry has its `exp`: numbers of every kind, or not a number.
fn any_exp_json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        4 => any_exp().prop_map(serde_json::Value::from),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => any::<f64>().prop_map(serde_json::Value::from),
        1 => "\\PC{0,12}".prop_map(serde_json::Value::from),
        1 => Just(serde_json::Value::Null),
    ]
}

/// Strings of an entry: mostly plausible printable ASCII, sometimes anything.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[!-~]{1,64}", 1 => "\\PC{0,24}", 1 => Just(String::new())]
}

/// A point in time: before, around and long after now, up to what SystemTime holds.
fn any_now() -> impl Strategy<Value = SystemTime> {
    prop_oneof![any::<u64>(), 0u64..4_000_000_000].prop_map(|s| {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(s))
            .unwrap_or(UNIX_EPOCH)
    })
}

const FORMATS: [EnvFormat; 5] = [
    EnvFormat::Sh,
    EnvFormat::Fish,
    EnvFormat::Powershell,
    EnvFormat::Dotenv,
    EnvFormat::Json,
];

/// True for `YYYY-MM-DDTHH:MM:SSZ`.
fn is_rfc3339_z(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Everything a session read from the store goes through, none of which may
/// panic, and all of which must be well-formed.
fn serve_every_way(bytes: &[u8], now: SystemTime) -> Result<(), TestCaseError> {
    let Some(s) = Session::from_entry(bytes) else {
        return Ok(());
    };
    prop_assert!((1..MAX_EXPIRATION).contains(&s.expiration));
    let left = s.seconds_left(now);
    prop_assert!(left <= s.expiration);
    prop_assert_eq!(s.is_fresh(now, Duration::from_secs(900)), left > 900);
    let expiration = s.expiration_rfc3339();
    prop_assert!(is_rfc3339_z(&expiration));
    let cp: serde_json::Value = serde_json::from_str(&output::credential_process(&s))
        .map_err(|e| TestCaseError::fail(format!("credential_process JSON: {e}")))?;
    prop_assert_eq!(cp["Version"].as_u64(), Some(1));
    prop_assert_eq!(cp["Expiration"].as_str(), Some(expiration.as_str()));
    prop_assert_eq!(cp["AccessKeyId"].as_str(), Some(s.access_key_id.as_str()));
    let vars = output::variables(&s, "work", Some("eu-west-1"));
    for f in FORMATS {
        // dotenv refuses values its readers would read differently.
        let out = match output::env_lines(&vars, f) {
            Ok(out) => out,
            Err(_) if f == EnvFormat::Dotenv => continue,
            Err(e) => return Err(TestCaseError::fail(format!("{f:?}: {}", e.message))),
        };
        for (k, _) in &vars {
            prop_assert!(out.contains(k), "{:?} lacks {}", f, k);
        }
    }
    let json: serde_json::Value = serde_json::from_str(
        &output::env_lines(&vars, EnvFormat::Json).expect("json takes any value"),
    )
    .map_err(|e| TestCaseError::fail(format!("env --format json: {e}")))?;
    prop_assert_eq!(
        json["AWS_CREDENTIAL_EXPIRATION"].as_str(),
        Some(expiration.as_str())
    );
    Ok(())
}

proptest! {
    #[test]
    fn entry_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Session::from_entry(&bytes);
    }

    #[test]
    fn arbitrary_entries_are_served_or_missed_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        v in prop_oneof![3 => Just(1u64), 1 => any::<u64>()],
        id in any_text(), sk in any_text(), st in any_text(),
        exp in any_exp_json(),
        extra in proptest::option::of(("[a-z]{1,4}", any_text())),
        now in any_now(),
    ) {
        serve_every_way(&bytes, now)?;
        let mut entry = serde_json::json!({"v": v, "id": id, "sk": sk, "st": st, "exp": exp});
        if let Some((k, val)) = extra {
            entry[k] = serde_json::Value::from(val);
        }
        serve_every_way(&serde_json::to_vec(&entry).unwrap(), now)?;
    }

    #[test]
    fn nonsense_expiries_are_misses(exp in any_exp(), now in any_now()) {
        let entry = format!(r#"{{"v":1,"id":"ASIAX","sk":"s","st":"t","exp":{exp}}}"#);
        let s = Session::from_entry(entry.as_bytes());
        prop_assert_eq!(s.is_some(), exp != 0 && exp < MAX_EXPIRATION);
        serve_every_way(entry.as_bytes(), now)?;
    }

    #[test]
    fn rfc3339_never_panics(secs in any_exp()) {
        let t = rfc3339(secs);
        prop_assert!(is_rfc3339_z(&t), "{}", t);
        if secs >= MAX_EXPIRATION {
            prop_assert_eq!(t, "9999-12-31T23:59:59Z");
        }
    }

    #[test]
    fn entry_parser_rejects_mangled_json(s in "\\{\"v\":1,\"id\":\"[ -~]{0,20}\",\"sk\":[ -~]{0,30}\\}") {
        // Missing fields: never a session.
        prop_assert!(Session::from_entry(s.as_bytes()).is_none());
    }

    #[test]
    fn entries_round_trip(id in "ASIA[A-Z0-9]{16}", sk in token(), st in token(), exp in 1..MAX_EXPIRATION) {
        let s = Session { access_key_id: id, secret_access_key: Secret::new(sk), session_token: Secret::new(st), expiration: exp };
        prop_assert_eq!(Session::from_entry(&s.to_entry()), Some(s));
    }

    #[test]
    fn durations_never_panic_and_stay_in_range(s in "\\PC{0,12}") {
        let _ = parse_duration(&s);
        if let Ok(d) = session_duration(&s) {
            prop_assert!((900..=129_600).contains(&d.as_secs()));
        }
    }

    #[test]
    fn plain_seconds_parse(n in 0u64..10_000_000) {
        prop_assert_eq!(parse_duration(&n.to_string()).unwrap().as_secs(), n);
    }

    #[test]
    fn codes_are_exactly_six_digits(s in "\\PC{0,10}") {
        match parse_code(&s) {
            Some(c) => prop_assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())),
            None => {
                let t = s.trim();
                prop_assert!(!(t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit())));
            }
        }
    }

    #[test]
    fn sts_errors_always_classify_with_a_hint(code in proptest::option::of("\\PC{0,30}"), msg in proptest::option::of("\\PC{0,200}")) {
        let e = StsError::classify(code.as_deref(), msg.as_deref());
        let f = e.to_fail(Some("arn:aws:iam::1:mfa/x"));
        prop_assert!(!f.hints.is_empty());
    }

    #[test]
    fn config_edit_keeps_every_other_line(
        lines in proptest::collection::vec("[a-z_]{1,8} = [ -~]{0,20}|# [ -~]{0,20}|\\[profile [a-z]{1,6}\\]|\\[default\\]|", 0..30),
        profile in "[a-z]{1,6}",
    ) {
        let text = lines.join("\n");
        let out = add_mfa_serial(&text, &profile, "arn:aws:iam::1:mfa/p");
        let kept: Vec<&str> = out.lines().filter(|l| *l != "mfa_serial = arn:aws:iam::1:mfa/p").collect();
        let orig: Vec<&str> = text.lines().filter(|l| {
            // An old mfa_serial in the target section is replaced, so skip those.
            !l.starts_with("mfa_serial")
        }).collect();
        let mut it = kept.iter();
        for l in orig {
            prop_assert!(it.any(|k| *k == l), "line {:?} lost", l);
        }
        prop_assert!(out.contains("mfa_serial = arn:aws:iam::1:mfa/p"));
    }

    /// A CRLF file stays CRLF: the same edit as for its LF form, line for line.
    #[test]
    fn config_edit_keeps_crlf(
        lines in proptest::collection::vec("[a-z_]{1,8} = [ -~]{0,20}|# [ -~]{0,20}|\\[profile [a-z]{1,6}\\]|\\[default\\]|", 1..30),
        profile in "[a-z]{1,6}",
        trailing in any::<bool>(),
    ) {
        let end = if trailing { "\n" } else { "" };
        let lf = lines.join("\n") + end;
        // A file of one line without an ending has no ending to keep.
        prop_assume!(lf.contains('\n'));
        let crlf = lf.replace('\n', "\r\n");
        let out = add_mfa_serial(&crlf, &profile, "arn:aws:iam::1:mfa/p");
        prop_assert!(!out.replace("\r\n", "").contains('\n'), "a bare LF in {:?}", out);
        prop_assert_eq!(out.replace("\r\n", "\n"), add_mfa_serial(&lf, &profile, "arn:aws:iam::1:mfa/p"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sh_quoting_round_trips(v in "\\PC{0,40}") {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote(&v)))
            .output()
            .unwrap();
        prop_assert_eq!(String::from_utf8(out.stdout).unwrap(), v);
    }

    /// Whatever dotenv writes, `set -a; . file` reads back exactly and runs
    /// nothing of it.
    #[test]
    fn dotenv_is_literal_for_sh(v in prop_oneof![
        "[a-z `\"();|&<>*?~#!{}^%=é-]{0,24}",
        "[ -~\t\n]{0,24}",
    ]) {
        let Ok(text) = env_lines(&[("V", v.clone())], EnvFormat::Dotenv) else {
            return Ok(());
        };
        let dir = std::env::temp_dir().join(format!("stsmfa-props-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".env"), &text).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("set -a; . ./.env; printf %s \"$V\"")
            .current_dir(&dir)
            .output()
            .unwrap();
        let files = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).unwrap();
        prop_assert_eq!(String::from_utf8(out.stdout).unwrap(), v);
        prop_assert_eq!(files, 1, "sourcing {:?} created a file", text);
    }
}

/// Lines a hand-kept credentials file may hold: headers (odd spacing too),
/// the key lines in any case and spacing, other keys, comments, blanks.
fn credentials_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\[ ?(work|play|default|profile work|w) ?\\]( # [a-z ]{0,8})?",
        "(aws_access_key_id|aws_secret_access_key|AWS_Secret_Access_Key|aws_session_token|region|output)[ \t]{0,2}=[ \t]{0,2}[A-Za-z0-9/+= #]{0,24}",
        "[#;][ -~]{0,20}",
        "[ \t]{0,3}",
        "[a-z_]{1,10} = [ -~]{0,16}",
    ]
}

proptest! {
    /// `import`'s edit drops only the two key lines of the profile: every
    /// other line stays byte for byte, in order, line endings included, and
    /// the other profiles parse the same.
    #[test]
    fn import_edit_keeps_every_other_line(
        lines in proptest::collection::vec((credentials_line(), prop_oneof![Just("\n"), Just("\r\n")]), 0..40),
        last_newline in any::<bool>(),
    ) {
        use stsmfa_core::profiles::keys_edit::{KEY_NAMES, remove_keys};
        let mut text: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
        if !last_newline && text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') { text.pop(); }
        }
        let (out, n) = remove_keys(&text, "work");
        // What should go: key lines while inside a [work] or [profile work] section.
        let mut inside = false;
        let mut expected = String::new();
        let mut dropped = 0;
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let t = body.trim();
            if let Some(rest) = t.strip_prefix('[') {
                let name = rest.split(']').next().unwrap().trim();
                inside = name == "work" || name.strip_prefix("profile ").map(str::trim) == Some("work");
            } else if inside && !body.starts_with([' ', '\t'])
                && body.split_once('=').is_some_and(|(k, _)| KEY_NAMES.iter().any(|n| n.eq_ignore_ascii_case(k.trim())))
            {
                dropped += 1;
                continue;
            }
            expected.push_str(line);
        }
        // Continuation lines (indented, non-blank) after a dropped key line go with it.
        let kept_lines: Vec<&str> = out.split_inclusive('\n').collect();
        let mut it = expected.split_inclusive('\n').peekable();
        for k in &kept_lines {
            loop {
                let e = it.next();
                prop_assert!(e.is_some(), "line {:?} was not in the file", k);
                if e == Some(*k) { break; }
                prop_assert!(e.unwrap().starts_with([' ', '\t']), "line {:?} lost", e);
            }
        }
        prop_assert_eq!(n, dropped);
        prop_assert!(out.len() <= text.len());
        // A file with no key line for the profile is returned unchanged.
        let (again, none) = remove_keys(&out, "work");
        prop_assert_eq!(none, 0);
        prop_assert_eq!(again, out);
    }
}
