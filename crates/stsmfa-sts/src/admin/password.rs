//! Temporary passwords for `admin onboard`: random (the OS's generator),
//! long enough for the account's password policy, and with all four
//! character classes, so that any policy IAM can express is satisfied.

use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols IAM counts as such; none that a shell or a terminal treats specially
/// when pasted inside quotes.
const SYMBOLS: &[u8] = b"!@#%^*()_+-=[]{}";

/// What the account password policy asks of a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub min_length: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { min_length: 8 }
    }
}

/// IAM accepts passwords of at most this many characters.
const MAX_LENGTH: usize = 128;
/// Long enough to be strong whatever the policy's minimum.
const LENGTH: usize = 20;

/// A uniformly random index below `n` (rejection sampling over bytes).
fn index(n: usize) -> Result<usize, Fail> {
    let limit = 256 - 256 % n;
    loop {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b).map_err(|e| fail!("cannot get random bytes from the OS: {e}"))?;
        if (b[0] as usize) < limit {
            return Ok(b[0] as usize % n);
        }
    }
}

pub fn generate(rules: Rules) -> Result<Secret<String>, Fail> {
    if rules.min_length > MAX_LENGTH {
        return Err(fail!(
            "the account password policy asks for {} characters; IAM takes at most {MAX_LENGTH}",
            rules.min_length
        )
        .hint("fix the minimum length: aws iam update-account-password-policy (iam:UpdateAccountPasswordPolicy)"));
    }
    let length = rules.min_length.max(LENGTH);
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let mut chars: Vec<u8> = Vec::with_capacity(length);
    for class in [LOWER, UPPER, DIGITS, SYMBOLS] {
        chars.push(class[index(class.len())?]);
    }
    while chars.len() < length {
        chars.push(all[index(all.len())?]);
    }
    // Fisher-Yates: the class representatives are not at fixed places.
    for i in (1..chars.len()).rev() {
        chars.swap(i, index(i + 1)?);
    }
    Ok(Secret::new(String::from_utf8(chars).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_present_and_the_minimum_length_is_kept() {
        for min in [6, 8, 20, 40, 128] {
            let p = generate(Rules { min_length: min }).unwrap();
            let p = p.expose();
            assert!(p.len() >= min && p.len() >= LENGTH, "{min}");
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()));
            assert!(p.bytes().any(|b| SYMBOLS.contains(&b)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn passwords_differ_and_debug_hides_them() {
        let a = generate(Rules::default()).unwrap();
        let b = generate(Rules::default()).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose().as_str()));
    }

    #[test]
    fn an_impossible_minimum_is_an_error() {
        assert!(generate(Rules { min_length: 129 }).is_err());
    }
}
