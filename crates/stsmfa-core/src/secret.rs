//! A wrapper that keeps secrets out of logs, panics and `Debug` output.

use std::fmt;

/// A secret value. `Debug` prints `REDACTED`, there is no `Display`, and
/// [`Secret::expose`] marks each place where the value really leaves.
///
/// ```
/// use stsmfa_core::secret::Secret;
/// let s = Secret::new("wJalrXUtnFEMI".to_string());
/// assert_eq!(format!("{s:?}"), "REDACTED");
/// assert_eq!(s.expose(), "wJalrXUtnFEMI");
/// ```
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

/// Masks an access key ID for display: `ASIA…WXYZ`. Key IDs are not secret,
/// but showing them whole invites copy-paste into tickets.
pub fn mask_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "…".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_even_nested() {
        let s = Secret::new("topsecret".to_string());
        let dbg = format!("{:?}", Some(&s));
        assert!(!dbg.contains("topsecret"), "{dbg}");
    }

    #[test]
    fn masks_key_ids() {
        assert_eq!(mask_key_id("ASIAABCDEFGHWXYZ"), "ASIA…WXYZ");
        assert_eq!(mask_key_id("short"), "…");
    }
}
