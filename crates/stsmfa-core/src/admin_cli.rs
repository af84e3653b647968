//! Command-line definitions of `stsmfa admin …`, the admin half of an MFA
//! rollout. Doc comments are the help text; the commands run in `stsmfa-sts`.

use crate::cli::SessionOpts;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print the MFA-required IAM policies (JSON), one variant or all four.
    #[command(
        after_help = "Variants:\n  enrolled      AWS's self-manage-MFA policy, devices restricted to mfa/${aws:username}\n  first-login   the same, plus the first password change without MFA\n  force-mfa     nothing but MFA setup and a password change until MFA is present\n  console-only  the Bool variant: long-term keys are NOT covered (printed with a warning)\n\nExamples:\n  stsmfa admin policy --variant first-login\n  stsmfa admin policy --variant enrolled --account 123456789012 > mfa.json"
    )]
    Policy(PolicyArgs),

    /// Create or update the MFA policies and groups, and let users change their password.
    #[command(
        after_help = "Examples:\n  stsmfa admin setup --profile admin --dry-run\n  stsmfa admin setup --profile admin --yes\n  stsmfa admin setup --groups onboarding=NotYetLoginUsers,enrolled=MFARequired,force=ForceMFA"
    )]
    Setup(SetupArgs),

    /// Create an IAM user with a temporary password, in the onboarding group.
    #[command(
        after_help = "Examples:\n  stsmfa admin onboard bob --group Developers\n  stsmfa admin onboard bob --access-key --out bob-handover.txt"
    )]
    Onboard(OnboardArgs),

    /// Move enrolled users out of onboarding and confine users without MFA (for cron).
    #[command(
        after_help = "Exit status: 0 on success (changed or not), 1 on a failure.\n\nExamples:\n  stsmfa admin sync --profile admin --dry-run\n  # crontab: every hour\n  0 * * * * stsmfa admin sync --profile mfa-sync --no-mfa --quiet"
    )]
    Sync(SyncArgs),

    /// One row per IAM user: what their password and keys can do without MFA.
    #[command(
        after_help = "Findings: console-without-mfa, keys-without-mfa, keys-bypass-mfa, mfa-not-required,\n  can-create-keys-without-mfa, device-name-not-restricted, stale-key\n\nExit status: 0; 3 when a finding named by --fail-on was found; 1 on a failure.\n\nExamples:\n  stsmfa admin audit --profile admin\n  stsmfa admin audit --profile prod --profile dev --format csv > audit.csv\n  stsmfa admin audit --fail-on keys-bypass-mfa,console-without-mfa"
    )]
    Audit(AuditArgs),

    /// What a policy allows with a long-term key, a console sign-in without MFA, and with MFA.
    #[command(
        after_help = "Examples:\n  stsmfa admin check-policy mfa.json\n  stsmfa admin check-policy --policy-arn arn:aws:iam::123456789012:policy/MFARequired\n  stsmfa admin check-policy --user bob"
    )]
    CheckPolicy(CheckPolicyArgs),
}

/// Whose credentials an admin command calls IAM with.
#[derive(Debug, Args, Clone, Default)]
pub struct AdminConn {
    /// The admin's profile: a source profile or a role profile (default:
    /// $AWS_PROFILE, else default); under an MFA policy, one prompt, then the
    /// cached session.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Call IAM with the profile's long-term keys, without an MFA session (a
    /// service user that cron runs `admin sync` as, exempt from the MFA policy).
    #[arg(long)]
    pub no_mfa: bool,

    #[command(flatten)]
    pub opts: SessionOpts,
}

/// The groups of the rollout, as `admin setup` creates them.
#[derive(Debug, Args, Clone)]
pub struct GroupsArg {
    /// The group names: onboarding (first login, no MFA yet), enrolled (MFA
    /// registered), force (confined to MFA setup).
    #[arg(
        long,
        value_name = "ROLE=NAME,…",
        default_value = "onboarding=NotYetLoginUsers,enrolled=MFARequired,force=ForceMFA"
    )]
    pub groups: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyVariant {
    FirstLogin,
    Enrolled,
    ForceMfa,
    ConsoleOnly,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Which policy (default: all four, one after the other, each named on stderr).
    #[arg(long, value_enum)]
    pub variant: Option<PolicyVariant>,

    /// Write this account ID into the resource ARNs (default: any account, `*`).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub conn: AdminConn,

    #[command(flatten)]
    pub groups: GroupsArg,

    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask: turn on AllowUsersToChangePassword, replace differing policies.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// The new IAM user's name.
    #[arg(value_name = "USER")]
    pub user: String,

    /// Another group to add the user to (its permissions apply once MFA is present).
    #[arg(long = "group", value_name = "GROUP")]
    pub extra_groups: Vec<String>,

    /// Also create an access key for the user (shown once, with the password).
    #[arg(long)]
    pub access_key: bool,

    /// Write the hand-over text (password, key) to FILE (mode 0600) instead of the terminal.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub conn: AdminConn,

    #[command(flatten)]
    pub groups: GroupsArg,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub conn: AdminConn,

    #[command(flatten)]
    pub groups: GroupsArg,

    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print nothing unless something changed or failed.
    #[arg(long)]
    pub quiet: bool,

    /// Print the changes as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// A user sync leaves alone (also: the tag stsmfa:exempt=true on the user).
    #[arg(long, value_name = "USER")]
    pub exempt: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// An account's admin profile; repeat for several accounts (default:
    /// $AWS_PROFILE, else default).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,

    /// Call IAM with the profiles' long-term keys, without MFA sessions.
    #[arg(long)]
    pub no_mfa: bool,

    #[command(flatten)]
    pub opts: SessionOpts,

    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,

    /// Exit with 3 when any of these findings is found (comma-separated).
    #[arg(long, value_name = "FINDING,…", value_delimiter = ',')]
    pub fail_on: Vec<String>,

    /// An access key older than this many days is a stale-key finding.
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    pub stale_days: u32,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["file", "policy_arn", "user"]))]
pub struct CheckPolicyArgs {
    /// A policy document (JSON) to check.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// A managed policy to check (its default version).
    #[arg(long, value_name = "ARN")]
    pub policy_arn: Option<String>,

    /// An IAM user whose policies (inline, attached, through groups) to check together.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Print the table as one JSON object.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub conn: AdminConn,
}
