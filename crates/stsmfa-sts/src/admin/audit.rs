//! `admin audit`.

use stsmfa_core::admin_cli::AuditArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

pub fn audit(_args: &AuditArgs) -> Result<u8, Fail> {
    Err(fail!("admin audit is not built yet"))
}
