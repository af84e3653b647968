//! `init`, `completions` and `man`: text generated from the binary itself.

use crate::cli::Cli;
use crate::error::Fail;
use crate::fail;
use crate::output::{fish_quote, ps_quote, sh_quote};
use clap::CommandFactory;

/// The shells `init` has an integration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

const BASH: &str = include_str!("../../shell/stsmfa.bash");
const ZSH: &str = include_str!("../../shell/stsmfa.zsh");
const FISH: &str = include_str!("../../shell/stsmfa.fish");
const POWERSHELL: &str = include_str!("../../shell/stsmfa.ps1");

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
    use clap_complete::env::EnvCompleter;
    let exe = std::env::current_exe()
        .map_err(|e| fail!("cannot find the stsmfa binary's own path: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let mut buf = Vec::new();
    let written = match shell {
        clap_complete::Shell::Bash => clap_complete::env::Bash
            .write_registration("COMPLETE", "stsmfa", "stsmfa", &exe, &mut buf),
        clap_complete::Shell::Zsh => clap_complete::env::Zsh
            .write_registration("COMPLETE", "stsmfa", "stsmfa", &exe, &mut buf),
        clap_complete::Shell::Fish => clap_complete::env::Fish
            .write_registration("COMPLETE", "stsmfa", "stsmfa", &exe, &mut buf),
        clap_complete::Shell::PowerShell => clap_complete::env::Powershell
            .write_registration("COMPLETE", "stsmfa", "stsmfa", &exe, &mut buf),
        clap_complete::Shell::Elvish => clap_complete::env::Elvish
            .write_registration("COMPLETE", "stsmfa", "stsmfa", &exe, &mut buf),
        other => {
            return Err(fail!("no completions for {other}")
                .hint("use bash, zsh, fish, powershell or elvish"));
        }
    };
    written.map_err(|e| fail!("cannot write completions: {e}"))?;
    crate::emit(&String::from_utf8_lossy(&buf));
    Ok(0)
}

/// The man page, from the same definitions as `--help`.
pub fn man() -> Result<u8, Fail> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| fail!("cannot render the man page: {e}"))?;
    crate::emit(&String::from_utf8_lossy(&buf));
    Ok(0)
}
