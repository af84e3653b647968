//! Property tests for every parser of outside input: the keyring entry,
//! durations, MFA codes, STS error handling, the config-file edit and the
//! shell and dotenv quoting. `PROPTEST_CASES=100000 cargo test --test props` runs them
//! long (see README, "Fuzzing").

use proptest::prelude::*;
use stsmfa::cli::EnvFormat;
use stsmfa::commands::enroll::add_mfa_serial;
use stsmfa::config::{parse_duration, session_duration};
use stsmfa::credentials::Session;
use stsmfa::output::{env_lines, sh_quote};
use stsmfa::prompt::parse_code;
use stsmfa::secret::Secret;
use stsmfa::sts::StsError;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/+=]{1,1200}"
}

proptest! {
    #[test]
    fn entry_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Session::from_entry(&bytes);
    }

    #[test]
    fn entry_parser_rejects_mangled_json(s in "\\{\"v\":1,\"id\":\"[ -~]{0,20}\",\"sk\":[ -~]{0,30}\\}") {
        // Missing fields: never a session.
        prop_assert!(Session::from_entry(s.as_bytes()).is_none());
    }

    #[test]
    fn entries_round_trip(id in "ASIA[A-Z0-9]{16}", sk in token(), st in token(), exp in any::<u64>()) {
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
