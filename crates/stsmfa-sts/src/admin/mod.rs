//! `stsmfa admin …`: the admin half of an MFA rollout. Every command calls
//! IAM with the admin profile's MFA session, got and cached by the same
//! session logic as every other command (or, with `--no-mfa`, with the
//! profile's long-term keys, for a service user that cron runs).

mod audit;
mod authz;
mod check_policy;
mod evaluate;
mod findings;
mod groups;
mod iam;
mod onboard;
mod password;
mod policy;
mod probes;
mod report;
mod setup;
mod simulate;
mod sync;
mod table;

pub use iam::{Iam, IamError};

use stsmfa_core::admin_cli::{AdminArgs, AdminCommand};
use stsmfa_core::error::Fail;

pub fn admin(args: AdminArgs) -> Result<u8, Fail> {
    match args.command {
        AdminCommand::Policy(a) => policy::print(&a),
        AdminCommand::Setup(a) => setup::setup(&a),
        AdminCommand::Onboard(a) => onboard::onboard(&a),
        AdminCommand::Sync(a) => sync::sync(&a),
        AdminCommand::Audit(a) => audit::audit(&a),
        AdminCommand::CheckPolicy(a) => check_policy::check_policy(&a),
    }
}
