//! Pure formatters: credential_process JSON and shell lines.

use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
use serde_json::json;

/// The syntax `env` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    Sh,
    Fish,
    Powershell,
    Dotenv,
    Json,
}

/// `{"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…,"Expiration":…}`
pub fn credential_process(s: &Session) -> String {
    // A struct keeps the key order of the contract.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Out<'a> {
        version: u8,
        access_key_id: &'a str,
        secret_access_key: &'a str,
        session_token: &'a str,
        expiration: String,
    }
    serde_json::to_string(&Out {
        version: 1,
        access_key_id: &s.access_key_id,
        secret_access_key: s.secret_access_key.expose(),
        session_token: s.session_token.expose(),
        expiration: s.expiration_rfc3339(),
    })
    .expect("plain strings serialise")
}

/// The variables a session sets, in order. `STSMFA_EXPIRATION_EPOCH` (not secret) is the
/// expiry in Unix seconds, so that prompt segments need no RFC 3339 parser of their own.
pub fn variables(s: &Session, profile: &str, region: Option<&str>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("AWS_ACCESS_KEY_ID", s.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            s.secret_access_key.expose().clone(),
        ),
        ("AWS_SESSION_TOKEN", s.session_token.expose().clone()),
        ("AWS_CREDENTIAL_EXPIRATION", s.expiration_rfc3339()),
        ("STSMFA_EXPIRATION_EPOCH", s.expiration.to_string()),
        ("STSMFA_PROFILE", profile.to_owned()),
    ];
    if let Some(r) = region {
        v.push(("AWS_REGION", r.to_owned()));
        v.push(("AWS_DEFAULT_REGION", r.to_owned()));
    }
    v
}

/// Variables that must not survive into the session's environment:
/// AWS_PROFILE would make SDKs prefer the profile over the session.
pub const UNSET: [&str; 2] = ["AWS_PROFILE", "AWS_SECURITY_TOKEN"];

/// Shell lines for `env`. Only dotenv can refuse a value (see [`dotenv_value`]).
pub fn env_lines(vars: &[(&'static str, String)], format: EnvFormat) -> Result<String, Fail> {
    env_lines_unsetting(vars, &UNSET, format)
}

/// Shell lines that set `vars` and unset `unset` (dotenv and JSON cannot unset).
pub fn env_lines_unsetting(
    vars: &[(&'static str, String)],
    unset: &[&str],
    format: EnvFormat,
) -> Result<String, Fail> {
    let mut out = String::new();
    match format {
        EnvFormat::Sh => {
            for (k, v) in vars {
                out += &format!("export {k}={}\n", sh_quote(v));
            }
            out += &format!("unset {}\n", unset.join(" "));
        }
        EnvFormat::Fish => {
            for (k, v) in vars {
                out += &format!("set -gx {k} {}\n", fish_quote(v));
            }
            for k in unset {
                out += &format!("set -e -g {k}\n");
            }
        }
        EnvFormat::Powershell => {
            for (k, v) in vars {
                out += &format!("$Env:{k} = {}\n", ps_quote(v));
            }
            for k in unset {
                out += &format!("Remove-Item -Path Env:{k} -ErrorAction SilentlyContinue\n");
            }
        }
        EnvFormat::Dotenv => {
            for (k, v) in vars {
                out += &format!("{k}={}\n", dotenv_value(k, v)?);
            }
        }
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            out = serde_json::to_string_pretty(&map).expect("strings serialise") + "\n";
        }
    }
    Ok(out)
}

/// POSIX single quotes: everything literal; `'` becomes `'\''`.
pub fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// fish single quotes: only `\` and `'` are special.
pub fn fish_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', r"\\").replace('\'', r"\'"))
}

/// PowerShell single quotes: `'` doubles (and so do its typographic forms).
pub fn ps_quote(v: &str) -> String {
    let mut s = String::from("'");
    for c in v.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            s.push(c);
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// A dotenv value. Three kinds of reader load these files: `set -a; . file`
/// in sh, python-dotenv and its kin, and docker's `--env-file`, which takes
/// everything after `=` literally. Every real AWS value (keys, tokens, dates,
/// regions, profile names) is made of letters, digits and `/+=-_.:@,`, and is
/// written bare, so all three read it alike. Anything else is single-quoted:
/// sh and python-dotenv take it literally and sh never runs any of it (docker
/// keeps the quotes). A value that no quoting makes sh and python-dotenv read
/// alike (`'`, `\`, `$`, which python-dotenv expands even in quotes) or that
/// would start a new line for docker (a control character) is refused.
fn dotenv_value(key: &str, v: &str) -> Result<String, Fail> {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/+=-_.:@,".contains(c))
    {
        return Ok(v.to_owned());
    }
    if v.chars().any(|c| c.is_control() || "'\\$".contains(c)) {
        return Err(fail!(
            "{key} cannot be written as dotenv: its value holds a quote, backslash, `$` or control character, which dotenv readers do not read alike"
        )
        .hint("use --format sh (or json) for this session"));
    }
    Ok(format!("'{v}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn session() -> Session {
        Session {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("ab/c+d=e'f\"g$h\\i".into()),
            session_token: Secret::new("FwoG//+tok==".into()),
            expiration: 1_795_427_393,
        }
    }

    #[test]
    fn credential_process_json_is_exact() {
        let out = credential_process(&session());
        assert!(
            out.starts_with("{\"Version\":1,\"AccessKeyId\":\"ASIAEXAMPLE\",\"SecretAccessKey\":"),
            "{out}"
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Expiration"], "2026-11-23T09:49:53Z");
        assert_eq!(v["SecretAccessKey"], "ab/c+d=e'f\"g$h\\i");
        assert_eq!(v.as_object().unwrap().len(), 5);
    }

    #[test]
    fn sh_output_round_trips_through_sh() {
        let vars = variables(&session(), "work", Some("eu-west-1"));
        let script = env_lines(&vars, EnvFormat::Sh).unwrap()
            + "printf '%s\\n' \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\" \"$AWS_REGION\" \"${AWS_PROFILE-unset}\"";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("AWS_PROFILE", "x")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "ab/c+d=e'f\"g$h\\i\nFwoG//+tok==\neu-west-1\nunset\n"
        );
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(fish_quote(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(ps_quote("a'b"), "'a''b'");
    }

    #[test]
    fn every_format_names_every_variable() {
        let vars = variables(&session(), "work", None);
        // The test session's secret holds every quote: not for dotenv.
        let plain = variables(&real_session(), "work", None);
        for f in [
            EnvFormat::Sh,
            EnvFormat::Fish,
            EnvFormat::Powershell,
            EnvFormat::Dotenv,
            EnvFormat::Json,
        ] {
            let vars = if f == EnvFormat::Dotenv {
                &plain
            } else {
                &vars
            };
            let out = env_lines(vars, f).unwrap();
            for k in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_CREDENTIAL_EXPIRATION",
                "STSMFA_EXPIRATION_EPOCH",
                "STSMFA_PROFILE",
            ] {
                assert!(out.contains(k), "{f:?} lacks {k}");
            }
            assert!(!out.contains("AWS_REGION"), "no region configured");
        }
        let json: serde_json::Value =
            serde_json::from_str(&env_lines(&vars, EnvFormat::Json).unwrap()).unwrap();
        assert_eq!(json["AWS_SECRET_ACCESS_KEY"], "ab/c+d=e'f\"g$h\\i");
    }

    fn real_session() -> Session {
        Session {
            access_key_id: "ASIAQWERTYUIOP123456".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: Secret::new(
                "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+abc=".into(),
            ),
            expiration: 1_795_427_393,
        }
    }

    /// A real session: every value bare, one `KEY=VALUE` line each.
    #[test]
    fn dotenv_writes_real_values_bare() {
        let vars = variables(&real_session(), "team.dev-2@corp", Some("eu-west-1"));
        let out = env_lines(&vars, EnvFormat::Dotenv).unwrap();
        let want: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert_eq!(out, want);
        assert!(!out.contains(['\'', '"']), "{out}");
        assert_eq!(dotenv_value("K", "").unwrap(), "");
    }

    /// Hostile values that are written come out single-quoted, and sh, dash
    /// and bash (`set -a; . file`) read them literally without running anything.
    #[test]
    fn dotenv_hostile_values_are_literal_for_sh() {
        let dir = std::env::temp_dir().join(format!("stsmfa-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hostile = [
            "`touch pwned1`",
            "a\"b\"c; touch pwned2 | touch pwned3 & #x",
            "(touch pwned4) {a,b} ~ * !! ^ % [x]  two  spaces",
            "",
        ];
        let vars: Vec<(&'static str, String)> = ["A", "B", "C", "D"]
            .into_iter()
            .zip(hostile.map(str::to_owned))
            .collect();
        let file = dir.join(".env");
        std::fs::write(&file, env_lines(&vars, EnvFormat::Dotenv).unwrap()).unwrap();
        for shell in ["sh", "dash", "bash"] {
            let out = std::process::Command::new(shell)
                .arg("-c")
                .arg("set -a; . ./.env; printf '%s\\n' \"$A\" \"$B\" \"$C\" \"$D\"")
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {out:?}");
            let want: String = hostile.iter().map(|v| format!("{v}\n")).collect();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{shell}");
            let left: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(left, [".env"], "{shell} ran something");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotenv_refuses_what_readers_disagree_on() {
        for v in [
            "$(touch x)",
            "${HOME}",
            "a'b",
            "a\\b",
            "a\nB=x",
            "a\rb",
            "\x1b[2J",
            "x\ty",
        ] {
            let e = dotenv_value("AWS_SESSION_TOKEN", v).unwrap_err();
            assert!(e.message.contains("AWS_SESSION_TOKEN"), "{}", e.message);
            assert!(
                !e.message.contains(v),
                "the value is not shown: {}",
                e.message
            );
            assert!(e.hints[0].contains("--format sh"));
        }
        let vars = vec![("AWS_SESSION_TOKEN", "to'k".to_owned())];
        assert!(env_lines(&vars, EnvFormat::Dotenv).is_err());
        assert!(env_lines(&vars, EnvFormat::Sh).is_ok());
    }

    #[test]
    fn variables_carry_the_expiry_in_epoch_seconds() {
        let vars = variables(&session(), "work", Some("eu-west-1"));
        let get = |name: &str| {
            let mut found = vars.iter().filter(|(k, _)| *k == name);
            let v = found.next().map(|(_, v)| v.as_str());
            assert!(found.next().is_none(), "{name} set twice");
            v
        };
        assert_eq!(get("STSMFA_EXPIRATION_EPOCH"), Some("1795427393"));
        assert_eq!(
            get("AWS_CREDENTIAL_EXPIRATION"),
            Some("2026-11-23T09:49:53Z"),
            "the same instant"
        );
        let json: serde_json::Value =
            serde_json::from_str(&env_lines(&vars, EnvFormat::Json).unwrap()).unwrap();
        assert_eq!(json["STSMFA_EXPIRATION_EPOCH"], "1795427393");
        for (f, line) in [
            (
                EnvFormat::Sh,
                "export STSMFA_EXPIRATION_EPOCH='1795427393'\n",
            ),
            (
                EnvFormat::Fish,
                "set -gx STSMFA_EXPIRATION_EPOCH '1795427393'\n",
            ),
            (
                EnvFormat::Powershell,
                "$Env:STSMFA_EXPIRATION_EPOCH = '1795427393'\n",
            ),
        ] {
            assert!(env_lines(&vars, f).unwrap().contains(line), "{f:?}");
        }
        // dotenv takes only values its readers agree on, as real sessions' are.
        let real = variables(&real_session(), "work", None);
        let dotenv = env_lines(&real, EnvFormat::Dotenv).unwrap();
        assert!(
            dotenv.contains("STSMFA_EXPIRATION_EPOCH=1795427393\n"),
            "{dotenv}"
        );
    }
}
