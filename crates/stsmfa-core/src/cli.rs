//! Command-line definitions only. Doc comments are the help text.

use crate::commands::setup::InitShell;
use crate::output::EnvFormat;
use crate::prompt::PromptMethod;
use crate::store::StoreChoice;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// MFA-authenticated AWS session credentials for the CLI, SDKs and Terraform.
///
/// stsmfa asks once for a TOTP code, calls STS GetSessionToken with your MFA
/// device, keeps the session in the OS keyring until it is about to expire, and
/// hands it to every tool: as a credential_process, as shell variables, or by
/// running a command.
#[derive(Debug, Parser)]
#[command(
    name = "stsmfa",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Example:\n  # ~/.aws/config\n  [profile work-mfa]\n  credential_process = stsmfa credential-process work\n\n  aws s3 ls --profile work-mfa"
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,

    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes.
#[derive(Debug, Args, Clone, Copy)]
pub struct Globals {
    /// Print diagnostics on stderr (never a secret).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Set by `stsmfa` when it hands a miss to `stsmfa-sts`: the cache was
    /// just read, so go straight to the lock (and read it again there).
    #[arg(long, global = true, hide = true)]
    pub after_miss: bool,
}

/// The command line of a cache hit: [`Cli`] with `credential-process` only.
/// clap builds every subcommand's definition before it parses, which cost a
/// quarter of a hit's instructions; every AWS call pays for this one.
#[derive(Parser)]
#[command(name = "stsmfa")]
struct HitCli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: HitCommand,
}

#[derive(Subcommand)]
enum HitCommand {
    CredentialProcess(ProfileArgs),
}

impl Cli {
    /// Parses the process's arguments: a valid `credential-process` command
    /// line through the small parser, everything else (help, errors, other
    /// commands) through the full one, so messages are always the full
    /// parser's.
    pub fn parse_args() -> Cli {
        Cli::parse_hit(std::env::args_os()).unwrap_or_else(Cli::parse)
    }

    /// `Some` only when `args` is a well-formed `credential-process` command line.
    pub fn parse_hit<I, T>(args: I) -> Option<Cli>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let hit = HitCli::try_parse_from(args).ok()?;
        let HitCommand::CredentialProcess(args) = hit.command;
        Some(Cli {
            globals: hit.globals,
            command: Command::CredentialProcess(args),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the session as credential_process JSON (for ~/.aws/config).
    #[command(
        after_help = "Example:\n  # ~/.aws/config\n  [profile work-mfa]\n  credential_process = stsmfa credential-process work\n\n  stsmfa credential-process work"
    )]
    CredentialProcess(ProfileArgs),

    /// Print shell lines that load the session: eval "$(stsmfa env work)".
    #[command(
        after_help = "Examples:\n  eval \"$(stsmfa env work)\"                  # bash, zsh, dash\n  stsmfa env work --format fish | source     # fish\n  stsmfa env work --format dotenv > .env.local"
    )]
    Env(EnvArgs),

    /// Run a command with the session in its environment (no command: $SHELL).
    #[command(
        after_help = "Examples:\n  stsmfa exec work -- terraform plan\n  stsmfa exec work                 # a shell with the session loaded\n  stsmfa exec --server prod-admin -- terraform apply   # renewed as it runs"
    )]
    Exec(ExecArgs),

    /// Show cached sessions and their time left (never a secret).
    #[command(after_help = "Examples:\n  stsmfa status\n  stsmfa status work --json")]
    Status(StatusArgs),

    /// Delete cached sessions.
    #[command(after_help = "Examples:\n  stsmfa clear work\n  stsmfa clear --all")]
    Clear(ClearArgs),

    /// Create and enable your own virtual MFA device, then record it in ~/.aws/config.
    #[command(after_help = "Example:\n  stsmfa enroll work --qr-png ~/mfa.png")]
    Enroll(EnrollArgs),

    // Long-term keys in the key store ------------------------------------
    /// Store an IAM user's long-term access key in the key store (checked with AWS first).
    #[command(
        after_help = "Examples:\n  stsmfa add work                      # asks for the key ID and the secret\n  AWS_ACCESS_KEY_ID=AKIA... AWS_SECRET_ACCESS_KEY=... stsmfa add work --env\n  stsmfa add work --key-store file     # an encrypted file (headless machines)"
    )]
    Add(AddArgs),

    /// Move long-term keys from ~/.aws/credentials into the key store.
    #[command(after_help = "Examples:\n  stsmfa import work\n  stsmfa import --all")]
    Import(ImportArgs),

    /// Replace the profile's access key with a new one, then delete the old (needs MFA).
    #[command(after_help = "Example:\n  stsmfa rotate work")]
    Rotate(RotateArgs),

    /// Delete a profile's stored keys and its cached sessions.
    #[command(after_help = "Examples:\n  stsmfa remove work\n  stsmfa remove work --yes")]
    Remove(RemoveArgs),

    /// List the profiles with keys in the key store (never a secret).
    #[command(after_help = "Examples:\n  stsmfa list\n  stsmfa list --json")]
    List(ListArgs),
    // ----------------------------------------------------------------------
    /// Print the shell integration (stsmfa-use, stsmfa-drop, a prompt segment).
    #[command(
        after_help = "Examples:\n  eval \"$(stsmfa init bash)\"                  # in ~/.bashrc\n  eval \"$(stsmfa init zsh)\"                   # in ~/.zshrc\n  stsmfa init fish | source                  # in ~/.config/fish/config.fish\n  Invoke-Expression (& stsmfa init powershell | Out-String)   # in $PROFILE"
    )]
    Init(InitArgs),

    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  stsmfa completions bash > ~/.local/share/bash-completion/completions/stsmfa\n  stsmfa completions zsh > \"${fpath[1]}/_stsmfa\"\n  stsmfa completions fish > ~/.config/fish/completions/stsmfa.fish"
    )]
    Completions(CompletionsArgs),

    // --- the credential endpoint (exec --server, serve) ---
    /// Serve the session on a loopback endpoint that SDKs renew from (for other tools).
    #[command(
        after_help = "Examples:\n  stsmfa serve work                  # prints the two variables to export, then serves\n  stsmfa serve prod-admin --port 9911 --format fish\n\nThe endpoint listens on 127.0.0.1 only; stop it with Ctrl-C."
    )]
    Serve(ServeArgs),
    // --- end of the credential endpoint ---
    /// Print the man page (roff) on stdout.
    #[command(
        hide = true,
        after_help = "Example:\n  stsmfa man > /usr/local/share/man/man1/stsmfa.1"
    )]
    Man,

    // ---- doctor
    /// Check the setup in order: config, store, code source, clock, identity and
    /// device, policy, cached sessions; one line each with the fix.
    #[command(
        after_help = "Exit status: 0 when no check fails, 1 otherwise.\n\nExamples:\n  stsmfa doctor work\n  stsmfa doctor work --json | jq '.checks[] | select(.status != \"ok\")'"
    )]
    Doctor(DoctorArgs),
    // ---- end doctor
    /// The admin half of an MFA rollout: policies, groups, onboarding, sync, audit.
    #[command(
        after_help = "Examples:\n  stsmfa admin setup --profile admin --yes\n  stsmfa admin onboard bob --profile admin --group Developers\n  stsmfa admin sync --profile admin\n  stsmfa admin audit --profile admin --format csv"
    )]
    Admin(crate::admin_cli::AdminArgs),
}

/// Options shared by every command that gets a session.
#[derive(Debug, Args, Default, Clone)]
pub struct SessionOpts {
    /// The current 6-digit MFA code (skips the prompt) [env: STSMFA_MFA_CODE].
    #[arg(long, value_name = "CODE")]
    pub mfa_code: Option<String>,

    /// Session length: 900, 15m, 12h, 36h (STS allows 15m to 36h) [env: STSMFA_DURATION];
    /// for a role profile the role session's, 15m to 12h (over 1h: a code for that role).
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,

    /// Ignore the cached session and get a new one.
    #[arg(long)]
    pub refresh: bool,

    /// MFA device ARN (default: mfa_serial, else discovered) [env: STSMFA_MFA_SERIAL].
    #[arg(long, value_name = "ARN")]
    pub mfa_serial: Option<String>,

    /// AWS region for STS [env: AWS_REGION].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Where sessions are cached [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,

    /// How to ask for a code when no code or mfa_process is given [env: STSMFA_PROMPT].
    #[arg(long, value_enum, value_name = "METHOD")]
    pub prompt: Option<PromptMethod>,
}

#[derive(Debug, Args, Clone)]
pub struct ProfileArgs {
    /// Source profile holding the long-term keys, or a role profile (role_arn +
    /// source_profile) (default: $AWS_PROFILE, else default).
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: Option<String>,

    #[command(flatten)]
    pub opts: SessionOpts,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub base: ProfileArgs,

    /// Output syntax.
    #[arg(long, value_enum, default_value_t = EnvFormat::Sh)]
    pub format: EnvFormat,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub base: ProfileArgs,

    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    // --- the credential endpoint ---
    /// Give CMD a loopback credential endpoint instead of fixed keys, so its SDKs
    /// renew the session themselves (for jobs longer than a session).
    #[arg(long)]
    pub server: bool,
    // --- end of the credential endpoint ---
}

// --- the credential endpoint ---
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub base: ProfileArgs,

    /// Port on 127.0.0.1 to listen on (default: one the system picks).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Syntax of the lines that export the endpoint's two variables.
    #[arg(long, value_enum, default_value_t = EnvFormat::Sh)]
    pub format: EnvFormat,
}
// --- end of the credential endpoint ---

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this profile's sessions.
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: Option<String>,

    /// Machine-readable output: a JSON array.
    #[arg(long)]
    pub json: bool,

    /// Which store to look in [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The profile whose sessions to delete, a source profile's role sessions with it
    /// (default: $AWS_PROFILE, else default).
    #[arg(value_name = "PROFILE", conflicts_with = "all", add = profile_candidates())]
    pub profile: Option<String>,

    /// Delete every cached session.
    #[arg(long)]
    pub all: bool,

    /// Which store to clear [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Profile with the new user's long-term keys (default: $AWS_PROFILE, else default).
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: Option<String>,

    /// Also write the QR code to this PNG file (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,

    /// Also print the base32 secret (for authenticator apps without a camera).
    #[arg(long)]
    pub show_secret: bool,

    /// For scripts: record mfa_serial without asking, and skip the offer of a first session.
    #[arg(long)]
    pub yes: bool,

    /// AWS region [env: AWS_REGION].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

// Long-term keys in the key store ----------------------------------------

/// Where long-term keys go.
#[derive(Debug, Args, Default, Clone)]
pub struct KeyStoreOpt {
    /// Where long-term keys are kept: auto, keychain, wincred, secret-service, file
    /// (never keyutils) [env: STSMFA_KEY_STORE].
    #[arg(long, value_name = "KEY_STORE")]
    pub key_store: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The profile the keys are for.
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: String,

    /// Take the keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long)]
    pub env: bool,

    /// Create [profile PROFILE] in ~/.aws/config without asking, if it is missing.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub key_store: KeyStoreOpt,

    /// AWS region for the check with STS [env: AWS_REGION].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The profiles whose keys to move.
    #[arg(value_name = "PROFILE", required_unless_present = "all", conflicts_with = "all", add = profile_candidates())]
    pub profiles: Vec<String>,

    /// Every profile with keys in ~/.aws/credentials.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub key_store: KeyStoreOpt,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub base: ProfileArgs,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The profile whose stored keys to delete.
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: String,

    /// Do not ask.
    #[arg(long)]
    pub yes: bool,

    /// Which store to clear the profile's sessions from [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable output: a JSON array.
    #[arg(long)]
    pub json: bool,

    /// Which store to look in for cached sessions [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,
}
// -------------------------------------------------------------------------
// ---- doctor
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The profile to check: a source profile, a role profile, or one whose
    /// credential_process runs stsmfa (default: $AWS_PROFILE, else default).
    #[arg(value_name = "PROFILE", add = profile_candidates())]
    pub profile: Option<String>,

    /// Machine-readable output: one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Which store to check [env: STSMFA_STORE].
    #[arg(long, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,

    /// AWS region for STS [env: AWS_REGION].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}
// ---- end doctor

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(value_enum)]
    pub shell: InitShell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Profile names from the AWS config files, for dynamic shell completion.
fn profile_candidates() -> clap_complete::engine::ArgValueCandidates {
    clap_complete::engine::ArgValueCandidates::new(|| {
        crate::profiles::profile_names()
            .into_iter()
            .map(clap_complete::CompletionCandidate::new)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn full(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stsmfa").chain(args.iter().copied()))
    }

    fn hit(args: &[&str]) -> Option<Cli> {
        Cli::parse_hit(std::iter::once("stsmfa").chain(args.iter().copied()))
    }

    #[test]
    fn the_hit_parser_reads_credential_process_lines_as_the_full_parser_does() {
        let lines: &[&[&str]] = &[
            &["credential-process"],
            &["credential-process", "work"],
            &["credential-process", "work", "--store", "keyutils"],
            &["-v", "credential-process", "work"],
            &["credential-process", "-v", "--after-miss", "work"],
            &[
                "credential-process",
                "--store=secret-service",
                "--refresh",
                "work",
            ],
            &[
                "credential-process",
                "--mfa-code",
                "123456",
                "--duration",
                "1h",
                "w",
            ],
            &[
                "credential-process",
                "--mfa-serial",
                "arn:aws:iam::1:mfa/a",
                "--region",
                "eu-west-1",
                "w",
            ],
            &["credential-process", "--prompt", "tty", "w"],
            &["credential-process", "--", "-odd-profile"],
        ];
        for line in lines {
            let want = full(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let got = hit(line).unwrap_or_else(|| panic!("{line:?}: the hit parser refused it"));
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{line:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_full_parser() {
        let lines: &[&[&str]] = &[
            &[],
            &["--help"],
            &["--version"],
            &["credential-process", "--help"],
            &["credential-process", "a", "b"],
            &["credential-process", "--store", "nowhere"],
            &["credential-process", "--no-such-option"],
            &["env", "work"],
            &["exec", "work", "--", "true"],
            &["status"],
            &["credential"],
        ];
        for line in lines {
            assert!(hit(line).is_none(), "{line:?}");
        }
    }

    #[test]
    fn the_hit_parser_has_the_full_parsers_options() {
        // A new option of credential-process or a new global one must reach both.
        let names = |c: &clap::Command| {
            let mut v: Vec<String> = c.get_arguments().map(|a| a.get_id().to_string()).collect();
            v.sort();
            v
        };
        let full = Cli::command();
        let hit = HitCli::command();
        assert_eq!(names(&hit), names(&full));
        let sub = |c: &clap::Command| names(c.find_subcommand("credential-process").unwrap());
        assert_eq!(sub(&hit), sub(&full));
    }
}
