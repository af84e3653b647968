//! `admin check-policy`.

use stsmfa_core::admin_cli::CheckPolicyArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn check_policy(_args: &CheckPolicyArgs) -> Result<u8, Fail> {
    Err(fail!("admin check-policy is not built yet"))
}
