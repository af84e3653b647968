//! `admin policy`: the MFA-required policies, generated from one definition.

use stsmfa_core::admin_cli::PolicyArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn print(_args: &PolicyArgs) -> Result<u8, Fail> {
    Err(fail!("admin policy is not built yet"))
}
