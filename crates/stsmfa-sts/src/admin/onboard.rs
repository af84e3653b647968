//! `admin onboard`.

use stsmfa_core::admin_cli::OnboardArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn onboard(_args: &OnboardArgs) -> Result<u8, Fail> {
    Err(fail!("admin onboard is not built yet"))
}
