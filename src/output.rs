//! Pure formatters: credential_process JSON and shell lines.

use crate::credentials::Session;
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

/// Shell lines for `env`.
pub fn env_lines(vars: &[(&'static str, String)], format: EnvFormat) -> String {
    let mut out = String::new();
    match format {
        EnvFormat::Sh => {
            for (k, v) in vars {
                out += &format!("export {k}={}\n", sh_quote(v));
            }
            out += &format!("unset {}\n", UNSET.join(" "));
        }
        EnvFormat::Fish => {
            for (k, v) in vars {
                out += &format!("set -gx {k} {}\n", fish_quote(v));
            }
            for k in UNSET {
                out += &format!("set -e -g {k}\n");
            }
        }
        EnvFormat::Powershell => {
            for (k, v) in vars {
                out += &format!("$Env:{k} = {}\n", ps_quote(v));
            }
            for k in UNSET {
                out += &format!("Remove-Item -Path Env:{k} -ErrorAction SilentlyContinue\n");
            }
        }
        EnvFormat::Dotenv => {
            for (k, v) in vars {
                out += &format!("{k}={}\n", dotenv_quote(v));
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
    out
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

/// dotenv: bare when safe, else double quotes with `\` escapes.
fn dotenv_quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+=-_.:@,".contains(c))
    {
        return v.to_owned();
    }
    let escaped = v
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
        .replace('$', r"\$");
    format!("\"{escaped}\"")
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
        let script = env_lines(&vars, EnvFormat::Sh)
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
        assert_eq!(dotenv_quote("abc/+="), "abc/+=");
        assert_eq!(dotenv_quote("a b\"$"), "\"a b\\\"\\$\"");
    }

    #[test]
    fn every_format_names_every_variable() {
        let vars = variables(&session(), "work", None);
        for f in [
            EnvFormat::Sh,
            EnvFormat::Fish,
            EnvFormat::Powershell,
            EnvFormat::Dotenv,
            EnvFormat::Json,
        ] {
            let out = env_lines(&vars, f);
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
            serde_json::from_str(&env_lines(&vars, EnvFormat::Json)).unwrap();
        assert_eq!(json["AWS_SECRET_ACCESS_KEY"], "ab/c+d=e'f\"g$h\\i");
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
            serde_json::from_str(&env_lines(&vars, EnvFormat::Json)).unwrap();
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
            (EnvFormat::Dotenv, "STSMFA_EXPIRATION_EPOCH=1795427393\n"),
        ] {
            assert!(env_lines(&vars, f).contains(line), "{f:?}");
        }
    }
}
