//! Edits of the AWS credentials file for `import` and `rotate`: the two key
//! lines of one profile removed or given new values, every other byte of
//! the file kept (comments, spacing, order, line endings).

/// The key lines `import` moves and `rotate` rewrites.
pub const KEY_NAMES: [&str; 2] = ["aws_access_key_id", "aws_secret_access_key"];

/// The section a header line opens, as the credentials file names profiles:
/// `[work]` (and `[profile work]`, which some tools write there too).
fn section_of(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.split(']').next()?.trim();
    Some(inner.strip_prefix("profile ").map_or(inner, str::trim))
}

/// The key a property line sets, if it sets one of [`KEY_NAMES`].
fn key_of(line: &str) -> Option<&'static str> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    KEY_NAMES
        .iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(k))
}

/// Calls `edit` for each key line of `profile` (with the key it sets);
/// `None` drops the line, `Some` replaces it. Indented continuation lines
/// of a key line go with it.
fn edit_lines(
    text: &str,
    profile: &str,
    mut edit: impl FnMut(&str, &'static str) -> Option<String>,
) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    let mut dropping = false;
    let mut changed = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if dropping && body.starts_with([' ', '\t']) && !body.trim().is_empty() {
            continue;
        }
        dropping = false;
        if let Some(name) = section_of(body).filter(|_| body.trim_start().starts_with('[')) {
            inside = name == profile;
        } else if inside && let Some(key) = key_of(body) {
            changed += 1;
            match edit(line, key) {
                Some(new) => out.push_str(&new),
                None => dropping = true,
            }
            continue;
        }
        out.push_str(line);
    }
    (out, changed)
}

/// `text` without the key lines of `profile`; and how many went.
pub fn remove_keys(text: &str, profile: &str) -> (String, usize) {
    edit_lines(text, profile, |_, _| None)
}

/// `text` with the key lines of `profile` set to `id` and `secret`, each
/// line keeping its spacing and line ending; and how many changed.
pub fn replace_keys(text: &str, profile: &str, id: &str, secret: &str) -> (String, usize) {
    edit_lines(text, profile, |line, key| {
        let (left, rest) = line.split_once('=').expect("a key line has '='");
        let ending = &line[line.trim_end_matches(['\n', '\r']).len()..];
        let space = &rest[..rest.len() - rest.trim_start_matches([' ', '\t']).len()];
        let value = if key == KEY_NAMES[0] { id } else { secret };
        Some(format!("{left}={space}{value}{ending}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# keys\r\n[default]\r\naws_access_key_id=AKIADEF\r\n\r\n[work]\naws_access_key_id   =  AKIAWORK # note\n  aws_secret_access_key = skip-me-not-a-key\nAWS_SECRET_ACCESS_KEY= s3cr3t\nregion = eu-west-1\n[ work2 ]\naws_access_key_id = AKIA2\n[work]\naws_secret_access_key = again";

    #[test]
    fn removes_exactly_the_profiles_key_lines() {
        let (out, n) = remove_keys(FILE, "work");
        assert_eq!(n, 3);
        assert_eq!(
            out,
            "# keys\r\n[default]\r\naws_access_key_id=AKIADEF\r\n\r\n[work]\nregion = eu-west-1\n[ work2 ]\naws_access_key_id = AKIA2\n[work]\n"
        );
        assert_eq!(remove_keys(FILE, "nobody"), (FILE.to_owned(), 0));
    }

    #[test]
    fn replaces_values_keeping_spacing_and_endings() {
        let (out, n) = replace_keys(FILE, "default", "AKIANEW", "new");
        assert_eq!(n, 1);
        assert!(out.starts_with("# keys\r\n[default]\r\naws_access_key_id=AKIANEW\r\n\r\n[work]"));
        let (out, _) = replace_keys(
            "[p]\naws_access_key_id =  A\naws_secret_access_key\t= S\n",
            "p",
            "B",
            "T",
        );
        assert_eq!(
            out,
            "[p]\naws_access_key_id =  B\naws_secret_access_key\t= T\n"
        );
    }
}
