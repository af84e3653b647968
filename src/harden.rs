//! Process hardening. This stub keeps `exec` compiling; the full module
//! restores the resource limits stsmfa lowered for itself before a child runs.

/// Gives a command that stsmfa is about to run the limits it would have had.
pub fn restore_child_limits() {}
