//! `admin setup`.

use stsmfa_core::admin_cli::SetupArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn setup(_args: &SetupArgs) -> Result<u8, Fail> {
    Err(fail!("admin setup is not built yet"))
}
