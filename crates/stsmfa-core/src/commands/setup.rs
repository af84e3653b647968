//! `init` and `completions`: text generated from the binary itself.

use crate::error::Fail;
use crate::fail;
use crate::output::{fish_quote, ps_quote, sh_quote};
use std::path::Path;

/// The shells `init` has an integration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

const BASH: &str = include_str!("../../../../shell/stsmfa.bash");
const ZSH: &str = include_str!("../../../../shell/stsmfa.zsh");
const FISH: &str = include_str!("../../../../shell/stsmfa.fish");
const POWERSHELL: &str = include_str!("../../../../shell/stsmfa.ps1");

/// The shell file with `@STSMFA@` replaced by this binary's quoted path.
pub fn init(shell: InitShell) -> Result<u8, Fail> {
    let exe = std::env::current_exe()
        .map_err(|e| fail!("cannot find the stsmfa binary's own path: {e}"))?;
    let exe = exe.to_string_lossy();
    let (text, quoted) = match shell {
        InitShell::Bash => (BASH, sh_quote(&exe)),
        InitShell::Zsh => (ZSH, sh_quote(&exe)),
        InitShell::Fish => (FISH, fish_quote(&exe)),
        InitShell::Powershell => (POWERSHELL, ps_quote(&exe)),
    };
    crate::emit(&text.replace("@STSMFA@", &quoted));
    Ok(0)
}

/// Completion scripts that ask the binary for candidates, so profile names
/// come from the AWS config files at completion time.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, Fail> {
    crate::emit(&completion_script(shell, &completer()?)?);
    Ok(0)
}

/// How the script calls this binary: by name when `stsmfa` on PATH is this
/// very binary, else by its full path.
fn completer() -> Result<String, Fail> {
    let exe = std::env::current_exe()
        .map_err(|e| fail!("cannot find the stsmfa binary's own path: {e}"))?;
    let name = format!("stsmfa{}", std::env::consts::EXE_SUFFIX);
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(&exe).ok();
    let first_on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
    });
    if first_on_path.is_some_and(|p| same(&p)) {
        return Ok("stsmfa".into());
    }
    exe.into_os_string().into_string().map_err(|p| {
        fail!(
            "the stsmfa binary's path is not UTF-8: {}",
            p.to_string_lossy()
        )
        .hint("install stsmfa on PATH, or in a directory whose name is UTF-8")
    })
}

/// Stands for the binary in clap's scripts; replaced by the path quoted for
/// where the script puts it (clap's bash script wraps a single-quoted path in
/// double quotes, and PowerShell's expands `$(…)` in it).
const PLACEHOLDER: &str = "stsmfa_completer_placeholder";

/// The registration script for `shell`, calling `completer` with
/// `STSMFA_COMPLETE` set, so that an unrelated `COMPLETE` in the environment
/// never turns a call into a completion request.
fn completion_script(shell: clap_complete::Shell, completer: &str) -> Result<String, Fail> {
    use clap_complete::env::EnvCompleter;
    use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
    let var = crate::COMPLETE_VAR;
    let (adapter, quoted): (&dyn EnvCompleter, String) = match shell {
        // "PLACEHOLDER" in the script: the quotes are replaced too.
        clap_complete::Shell::Bash => (&Bash, sh_quote(completer)),
        clap_complete::Shell::Zsh => (&Zsh, sh_quote(completer)),
        clap_complete::Shell::Elvish => (&Elvish, elvish_quote(completer)),
        clap_complete::Shell::PowerShell => (
            &Powershell,
            ps_quote(completer).replace('`', "``").replace('$', "`$"),
        ),
        // clap quotes for fish's two rounds of parsing itself.
        clap_complete::Shell::Fish => {
            let mut buf = Vec::new();
            Fish.write_registration(var, "stsmfa", "stsmfa", completer, &mut buf)
                .map_err(|e| fail!("cannot write completions: {e}"))?;
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        other => {
            return Err(fail!("no completions for {other}")
                .hint("use bash, zsh, fish, powershell or elvish"));
        }
    };
    let mut buf = Vec::new();
    adapter
        .write_registration(var, "stsmfa", "stsmfa", PLACEHOLDER, &mut buf)
        .map_err(|e| fail!("cannot write completions: {e}"))?;
    let script = String::from_utf8_lossy(&buf);
    let in_double_quotes = format!("\"{PLACEHOLDER}\"");
    let target = if script.contains(&in_double_quotes) {
        in_double_quotes.as_str()
    } else {
        PLACEHOLDER
    };
    if script.matches(target).count() != 1 {
        return Err(fail!(
            "cannot write completions: unexpected {shell} script from clap_complete"
        ));
    }
    Ok(script.replace(target, &quoted))
}

/// Elvish single quotes: everything literal; `'` doubles.
fn elvish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    const HOSTILE: &str = "/opt/my tools/$(touch pwned)/it's/stsmfa";

    #[test]
    fn completion_scripts_quote_any_path_for_their_shell() {
        let bash = completion_script(Shell::Bash, HOSTILE).unwrap();
        assert!(
            bash.contains(r#"'/opt/my tools/$(touch pwned)/it'\''s/stsmfa' -- "${words[@]}""#),
            "{bash}"
        );
        let zsh = completion_script(Shell::Zsh, HOSTILE).unwrap();
        assert!(
            zsh.contains(r"'/opt/my tools/$(touch pwned)/it'\''s/stsmfa' --"),
            "{zsh}"
        );
        let ps = completion_script(Shell::PowerShell, HOSTILE).unwrap();
        assert!(
            ps.contains("& '/opt/my tools/`$(touch pwned)/it''s/stsmfa' -- $args"),
            "{ps}"
        );
        let elvish = completion_script(Shell::Elvish, HOSTILE).unwrap();
        assert!(
            elvish.contains(" '/opt/my tools/$(touch pwned)/it''s/stsmfa' --"),
            "{elvish}"
        );
        let fish = completion_script(Shell::Fish, HOSTILE).unwrap();
        assert!(
            fish.contains(r"'/opt/my tools/\$(touch pwned)/it\\'s/stsmfa'"),
            "{fish}"
        );
        for script in [&bash, &zsh, &ps, &elvish, &fish] {
            assert!(!script.contains(PLACEHOLDER), "{script}");
        }
    }

    #[test]
    fn completion_scripts_use_stsmfas_own_variable() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let script = completion_script(shell, "stsmfa").unwrap();
            assert!(script.contains("STSMFA_COMPLETE"), "{shell}: {script}");
            let bare = script.replace("STSMFA_COMPLETE", "");
            assert!(!bare.contains("COMPLETE="), "{shell}: {script}");
        }
    }

    #[test]
    fn bash_script_runs_nothing_of_the_path_on_tab() {
        let dir = std::env::temp_dir().join(format!("stsmfa-completions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = completion_script(
            Shell::Bash,
            &format!("{}/$(touch pwned)/stsmfa", dir.display()),
        )
        .unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{script}\ncomplete -p stsmfa >/dev/null || exit 9\nCOMP_WORDS=(stsmfa '')\nCOMP_CWORD=1\n_clap_complete_stsmfa stsmfa '' stsmfa\ntrue"
            ))
            .current_dir(&dir)
            .output()
            .unwrap();
        let left = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(left, 0, "completing ran a command from the path");
    }
}
