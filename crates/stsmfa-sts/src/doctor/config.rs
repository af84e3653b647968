//! Config: which files, the profile and its source profile, where the
//! long-term keys come from, `mfa_serial`, and every `credential_process`
//! line that runs stsmfa (an existing binary, with `stsmfa-sts` beside it).
//!
//! The keys come from the AWS files today; `keys_origin` is the one place
//! that says where, so another origin (a key store) is one more arm there.

use std::path::{Path, PathBuf};
use stsmfa_core::EnvLookup;
use stsmfa_core::cli::{DoctorArgs, SessionOpts};
use stsmfa_core::config::{self, Settings};
use stsmfa_core::doctor_report::Check;
use stsmfa_core::profiles::{self, FileKind, ProfileSet};
use stsmfa_core::secret::mask_key_id;

/// The file system as the checks see it: a seam for unit tests.
pub trait Fs {
    fn exists(&self, path: &Path) -> bool;
    fn executable(&self, path: &Path) -> bool;
    fn read(&self, path: &Path) -> Option<String>;
    /// Group or others may read it.
    fn shared(&self, path: &Path) -> bool;
}

pub struct RealFs;

impl Fs for RealFs {
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn executable(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
    fn shared(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
}

/// Pushes the config lines; the settings when the profile resolves (the
/// other groups need them).
pub fn checks(
    args: &DoctorArgs,
    env: EnvLookup,
    fs: &dyn Fs,
    out: &mut Vec<Check>,
) -> Option<Settings> {
    let files = profiles::config_files(env);
    let shown: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "{} ({})",
                f.display(),
                if fs.exists(f) { "found" } else { "missing" }
            )
        })
        .collect();
    out.push(if files.iter().any(|f| fs.exists(f)) {
        Check::ok("config", format!("files: {}", shown.join(", ")))
    } else {
        Check::fail("config", format!("no AWS config files: {}", shown.join(", ")))
            .fix("put the IAM user's keys in ~/.aws/credentials (`aws configure`), or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at your files")
    });
    let set = match profiles::load(env) {
        Ok(set) => set,
        Err(f) => {
            out.push(Check::from_fail("config", &f));
            return None;
        }
    };
    out.extend(credential_processes(&set, env, fs));
    let opts = SessionOpts {
        store: args.store,
        region: args.region.clone(),
        ..SessionOpts::default()
    };
    let settings = match config::resolve(args.profile.as_deref(), &opts, env, &set) {
        Ok(s) => s,
        Err(f) => {
            out.push(Check::from_fail("config", &f));
            return None;
        }
    };
    let asked = config::profile_name(args.profile.as_deref(), env);
    out.push(Check::ok("config", profile_line(&asked, &settings)));
    out.push(keys_origin(&settings, &files, fs));
    out.push(match &settings.mfa_serial {
        Some(serial) => Check::ok("config", format!("mfa_serial {serial}")),
        None => Check::ok(
            "config",
            "no mfa_serial: stsmfa looks the device up (ListMFADevices) on each miss; the identity line below says whether it can",
        ),
    });
    Some(settings)
}

fn profile_line(asked: &str, s: &Settings) -> String {
    let chain: Vec<&str> = s.roles.iter().map(|r| r.arn.as_str()).collect();
    match (asked == s.profile, chain.is_empty()) {
        (true, _) => format!("profile {asked}: a source profile with long-term keys"),
        (false, true) => format!(
            "profile {asked} serves the session of source profile {}",
            s.profile
        ),
        (false, false) => format!(
            "profile {asked} assumes {} with the session of source profile {}",
            chain.join(" > "),
            s.profile
        ),
    }
}

/// Where the long-term keys come from: the key store (its index says which,
/// without the passphrase of the file store), the credentials or the config file.
fn keys_origin(s: &Settings, files: &[PathBuf; 2], fs: &dyn Fs) -> Check {
    let stored = crate::keys::Dirs::real(s.state_dir.clone())
        .ok()
        .and_then(|dirs| {
            crate::keys::index::Index::load(&dirs)
                .get(&s.profile)
                .cloned()
        });
    let Some(keys) = s.keys.in_file() else {
        return match stored {
            Some(line) => Check::ok(
                "config",
                format!(
                    "long-term key {} of [{}] from the key store ({})",
                    line.key, s.profile, line.store
                ),
            ),
            None => Check::fail(
                "config",
                format!(
                    "profile {} has no long-term key in the key store or the AWS files",
                    s.profile
                ),
            )
            .fix(format!("stsmfa add {}", s.profile)),
        };
    };
    if let Some(line) = stored {
        return Check::warn(
            "config",
            format!(
                "long-term key {} of [{}] from the key store ({}); the AWS credentials file still has a copy",
                line.key, s.profile, line.store
            ),
        )
        .fix(format!("stsmfa import {}", s.profile));
    }
    let key = mask_key_id(&keys.access_key_id);
    let holds_key = |path: &Path, kind: FileKind| {
        fs.read(path)
            .and_then(|text| ProfileSet::parse(&[(kind, &text)]).ok())
            .and_then(|set| {
                set.get_profile(&s.profile).and_then(|p| {
                    p.get("aws_access_key_id")
                        .map(str::trim)
                        .map(|k| k == keys.access_key_id)
                })
            })
            .unwrap_or(false)
    };
    let [config_file, credentials_file] = files;
    if holds_key(credentials_file, FileKind::Credentials) {
        let c = Check::ok(
            "config",
            format!(
                "long-term key {key} of [{}] from {}",
                s.profile,
                credentials_file.display()
            ),
        );
        if fs.shared(credentials_file) {
            return Check::warn("config", format!("{}, which others may read", c.message))
                .fix(format!("chmod 600 {}", credentials_file.display()));
        }
        return c;
    }
    if holds_key(config_file, FileKind::Config) {
        return Check::warn(
            "config",
            format!(
                "long-term key {key} of [{}] is in the config file {}",
                s.profile,
                config_file.display()
            ),
        )
        .fix(format!(
            "move aws_access_key_id and aws_secret_access_key to [{}] in {}",
            s.profile,
            credentials_file.display()
        ));
    }
    Check::ok("config", format!("long-term key {key} of [{}]", s.profile))
}

/// Every `credential_process` that runs stsmfa must find it, with
/// `stsmfa-sts` beside it (a miss runs that).
fn credential_processes(set: &ProfileSet, env: EnvLookup, fs: &dyn Fs) -> Vec<Check> {
    let mut names: Vec<&str> = set.profiles().collect();
    names.sort_unstable();
    let mut out = Vec::new();
    for name in names {
        let Some(line) = set
            .get_profile(name)
            .and_then(|p| p.get("credential_process"))
        else {
            continue;
        };
        let Some(program) = first_word(line) else {
            continue;
        };
        let base = Path::new(&program)
            .file_name()
            .and_then(|b| b.to_str())
            .unwrap_or("");
        if base != "stsmfa" && base != "stsmfa-sts" {
            continue;
        }
        let found = if program.contains('/') {
            let p = PathBuf::from(&program);
            fs.executable(&p).then_some(p)
        } else {
            env("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(&program))
                    .find(|p| fs.executable(p))
            })
        };
        let section = if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        };
        let check = match found {
            None if program.contains('/') => Check::fail(
                "config",
                format!(
                    "credential_process of [{section}] runs {program}, which does not exist or is not executable"
                ),
            ),
            None => Check::fail(
                "config",
                format!("credential_process of [{section}] runs {program}, which is not on PATH"),
            ),
            Some(bin) => {
                let full = bin.with_file_name(stsmfa_core::commands::FULL_BINARY);
                if fs.executable(&full) {
                    Check::ok(
                        "config",
                        format!(
                            "credential_process of [{section}] runs {}, with stsmfa-sts beside it",
                            bin.display()
                        ),
                    )
                } else {
                    Check::fail(
                        "config",
                        format!("credential_process of [{section}] runs {}, but {} is missing: every cache miss fails", bin.display(), full.display()),
                    )
                    .fix("install both binaries into one directory (./install.sh, cargo install --path crates/stsmfa-sts, or the Debian package)")
                }
            }
        };
        out.push(if check.fix.is_empty() && check.status != stsmfa_core::doctor_report::Status::Ok {
            check.fix(format!("point it at the installed stsmfa: credential_process = {} credential-process SOURCE", installed_hint()))
        } else {
            check
        });
    }
    out
}

/// The stsmfa that is running now, for the fix.
fn installed_hint() -> String {
    std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("stsmfa").display().to_string())
        .unwrap_or_else(|| "stsmfa".to_owned())
}

/// The program of a command line: its first word, quotes removed.
fn first_word(line: &str) -> Option<String> {
    let line = line.trim_start();
    let (quote, rest) = match line.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &line[1..]),
        _ => (None, line),
    };
    let word = match quote {
        Some(q) => rest.split(q).next().unwrap_or(rest),
        None => rest.split_whitespace().next().unwrap_or(rest),
    };
    (!word.is_empty()).then(|| word.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use stsmfa_core::doctor_report::Status;

    /// Files by path; executables and shared files listed.
    #[derive(Default)]
    struct FakeFs {
        files: HashMap<PathBuf, String>,
        exes: Vec<PathBuf>,
        shared: Vec<PathBuf>,
    }

    impl Fs for FakeFs {
        fn exists(&self, p: &Path) -> bool {
            self.files.contains_key(p)
        }
        fn executable(&self, p: &Path) -> bool {
            self.exes.iter().any(|e| e == p)
        }
        fn read(&self, p: &Path) -> Option<String> {
            self.files.get(p).cloned()
        }
        fn shared(&self, p: &Path) -> bool {
            self.shared.iter().any(|e| e == p)
        }
    }

    const CREDS: &str =
        "[work]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\naws_secret_access_key = sekrit\n";

    fn run(
        config: &str,
        fs_extra: impl FnOnce(&mut FakeFs),
        profile: &str,
    ) -> (Vec<Check>, Option<Settings>) {
        let dir = std::env::temp_dir().join(format!(
            "stsmfa-doctor-{}-{}",
            std::process::id(),
            stsmfa_core::fnv1a(config.as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cfg, cred) = (dir.join("config"), dir.join("credentials"));
        std::fs::write(&cfg, config).unwrap();
        std::fs::write(&cred, CREDS).unwrap();
        let mut fs = FakeFs::default();
        fs.files.insert(cfg.clone(), config.into());
        fs.files.insert(cred.clone(), CREDS.into());
        fs_extra(&mut fs);
        let vars: HashMap<&str, String> = HashMap::from([
            ("AWS_CONFIG_FILE", cfg.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", cred.display().to_string()),
            ("STSMFA_STATE_DIR", dir.join("state").display().to_string()),
            ("PATH", "/usr/local/bin:/usr/bin:/opt/bin".into()),
        ]);
        let env = |k: &str| vars.get(k).cloned();
        let args = DoctorArgs {
            profile: Some(profile.into()),
            json: false,
            store: None,
            region: None,
        };
        let mut out = Vec::new();
        let s = checks(&args, &env, &fs, &mut out);
        std::fs::remove_dir_all(&dir).ok();
        (out, s)
    }

    #[test]
    fn a_healthy_profile_is_all_ok_and_names_where_the_key_is() {
        let cfg = "[profile work]\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n";
        let (out, s) = run(cfg, |_| {}, "work");
        assert!(s.is_some());
        assert!(out.iter().all(|c| c.status == Status::Ok), "{out:?}");
        let key = out
            .iter()
            .find(|c| c.message.starts_with("long-term key"))
            .unwrap();
        assert!(
            key.message.contains("AKIA…MNOP") && key.message.ends_with("credentials"),
            "{}",
            key.message
        );
        assert!(!format!("{out:?}").contains("sekrit"));
    }

    #[test]
    fn a_missing_profile_fails_and_stops() {
        let (out, s) = run("", |_| {}, "nope");
        assert!(s.is_none());
        assert_eq!(out.last().unwrap().status, Status::Fail);
        assert!(!out.last().unwrap().fix.is_empty());
    }

    #[test]
    fn credential_process_lines_must_find_stsmfa_and_stsmfa_sts() {
        let cfg = "[profile a]\ncredential_process = /nowhere/stsmfa credential-process work\n\
                   [profile b]\ncredential_process = /opt/bin/stsmfa credential-process work\n\
                   [profile c]\ncredential_process = stsmfa credential-process work\n\
                   [profile d]\ncredential_process = \"/usr/bin/stsmfa\" credential-process work\n\
                   [profile e]\ncredential_process = aws-vault export --format=json x\n";
        let (out, _) = run(
            cfg,
            |fs| {
                fs.exes = ["/opt/bin/stsmfa", "/usr/bin/stsmfa", "/usr/bin/stsmfa-sts"]
                    .map(PathBuf::from)
                    .to_vec();
            },
            "work",
        );
        let line = |p: &str| {
            out.iter()
                .find(|c| c.message.contains(&format!("[profile {p}]")))
                .unwrap_or_else(|| panic!("no line for {p}: {out:?}"))
        };
        assert_eq!(line("a").status, Status::Fail);
        assert!(line("a").message.contains("does not exist"));
        assert!(line("a").fix[0].contains("credential_process ="));
        assert_eq!(line("b").status, Status::Fail);
        assert!(line("b").message.contains("/opt/bin/stsmfa-sts is missing"));
        assert_eq!(line("c").status, Status::Ok, "found on PATH in /usr/bin");
        assert_eq!(line("d").status, Status::Ok);
        assert!(!out.iter().any(|c| c.message.contains("[profile e]")));
    }

    #[test]
    fn a_process_profile_names_its_source_and_keys_shared_warn() {
        let cfg = "[profile work-mfa]\ncredential_process = stsmfa credential-process work\n";
        let (out, s) = run(
            cfg,
            |fs| {
                fs.shared = fs
                    .files
                    .keys()
                    .filter(|p| p.ends_with("credentials"))
                    .cloned()
                    .collect();
            },
            "work-mfa",
        );
        assert_eq!(s.unwrap().profile, "work");
        assert!(
            out.iter()
                .any(|c| c.message == "profile work-mfa serves the session of source profile work"),
            "{out:?}"
        );
        let key = out
            .iter()
            .find(|c| c.message.starts_with("long-term key"))
            .unwrap();
        assert_eq!(key.status, Status::Warn);
        assert!(key.fix[0].starts_with("chmod 600"));
    }

    #[test]
    fn a_role_profile_names_its_chain_and_source() {
        let cfg = "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\nsource_profile = work\n";
        let (out, s) = run(cfg, |_| {}, "admin");
        assert_eq!(s.unwrap().roles.len(), 1);
        assert!(
            out.iter().any(|c| c.message
                == "profile admin assumes arn:aws:iam::123456789012:role/Admin with the session of source profile work"),
            "{out:?}"
        );
    }

    #[test]
    fn first_word_handles_quotes() {
        assert_eq!(
            first_word("  stsmfa credential-process x").as_deref(),
            Some("stsmfa")
        );
        assert_eq!(
            first_word("'/a b/stsmfa' x").as_deref(),
            Some("/a b/stsmfa")
        );
        assert_eq!(first_word("   "), None);
    }
}
