//! `admin sync`.

use stsmfa_core::admin_cli::SyncArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn sync(_args: &SyncArgs) -> Result<u8, Fail> {
    Err(fail!("admin sync is not built yet"))
}
