//! Runs the built `stsmfa` binary, so `cargo test` alone exercises the
//! program: usage errors, `--store none`, and the commands that need no AWS
//! call. Each test gets its own empty HOME and an environment stripped of
//! the developer's AWS settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("stsmfa-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home/.aws")).unwrap();
        Env { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.home().join(rel), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stsmfa"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home())
            .env("STSMFA_STATE_DIR", self.dir.join("state"))
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unknown_commands_and_options_are_usage_errors() {
    let env = Env::new("usage");
    for args in [
        &["no-such-command"][..],
        &["credential-process", "--no-such-flag"],
        &["env", "--format", "xml"],
        &["status", "--store", "floppy"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).contains("error:"), "{args:?}");
    }
}

#[test]
fn an_invalid_duration_is_a_usage_error_naming_its_source() {
    let env = Env::new("duration");
    env.write(
        ".aws/credentials",
        "[work]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s\n",
    );
    let out = env.run(&[
        "credential-process",
        "work",
        "--duration",
        "10m",
        "--store",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("stsmfa: error:") && err.contains("--duration"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn store_none_caches_nothing_and_says_so() {
    let env = Env::new("none");
    let out = env.run(&["status", "--store", "none"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "no cached sessions in none\n");
    let out = env.run(&["status", "--store", "none", "--json"]);
    assert_eq!(text(&out.stdout), "[]\n");
    let out = env.run(&["clear", "--all", "--store", "none"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_missing_profile_is_a_clear_error_listing_the_known_ones() {
    let env = Env::new("profile");
    env.write(
        ".aws/credentials",
        "[work]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s\n",
    );
    let out = env.run(&["credential-process", "nope", "--store", "none"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.starts_with("stsmfa: error: profile 'nope'"), "{err}");
    assert!(err.contains("hint: known profiles: work"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn init_and_completions_name_this_binary() {
    let env = Env::new("init");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = env.run(&["init", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        assert!(text(&out.stdout).contains("stsmfa-use"), "{shell}");
    }
    let out = env.run(&["completions", "bash"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("STSMFA_COMPLETE"));
}

#[test]
fn help_shows_an_example_for_every_command() {
    let env = Env::new("help");
    for cmd in [
        "credential-process",
        "env",
        "exec",
        "status",
        "clear",
        "enroll",
        "init",
    ] {
        let out = env.run(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(
            text(&out.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_stsmfa")).exists());
}
