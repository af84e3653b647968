//! Editing the AWS config file in place: one key set in one profile's
//! section, every other byte kept (comments, order, CRLF line endings), the
//! file a symlink points to edited where it lives, a backup with the old
//! file's mode, and an atomic rename.

use crate::error::Fail;
use crate::fail;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file `path` names, through any chain of symlinks (a dangling link
/// too: its target is where the file is created).
pub fn resolve_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // As many links as the kernel follows (ELOOP past that).
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = p
                    .parent()
                    .map_or_else(|| target.clone(), |d| d.join(&target))
            }
            Err(_) => break,
        }
    }
    p
}

pub fn section_name(profile: &str) -> String {
    if profile == "default" {
        "default".into()
    } else {
        format!("profile {profile}")
    }
}

/// `config` → `config.stsmfa-backup`, next to it.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes through a temporary file and a rename, keeping a backup of the old
/// file. Both are created 0600 and then given the old file's mode, so that no
/// moment exists when a private config is readable by others. Returns the
/// backup's path.
pub fn write_atomically(
    path: &Path,
    old: Option<&str>,
    new: &str,
) -> Result<Option<PathBuf>, Fail> {
    let err = |e: std::io::Error| {
        fail!("cannot write {}: {e}", path.display())
            .hint("nothing was changed; add mfa_serial by hand")
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let write = |to: &Path, text: &str| -> std::io::Result<()> {
        // A fresh file, so that an old one's looser mode is not kept.
        match std::fs::remove_file(to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(to)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Some(mode) = &mode {
            std::fs::set_permissions(to, mode.clone())?;
        }
        Ok(())
    };
    let backup = match old {
        Some(old) => {
            let backup = sibling(path, ".stsmfa-backup");
            write(&backup, old).map_err(err)?;
            Some(backup)
        }
        None => None,
    };
    let tmp = sibling(path, ".stsmfa-tmp");
    write(&tmp, new)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })?;
    Ok(backup)
}

/// Returns `text` with `mfa_serial = serial` in the profile's section, every
/// other line kept as it was, line endings included (a file with CRLF lines
/// gets a CRLF line).
pub fn add_mfa_serial(text: &str, profile: &str, serial: &str) -> String {
    let header_matches = |line: &str| {
        let l = line.trim();
        let Some(inner) = l.strip_prefix('[').and_then(|r| r.split(']').next()) else {
            return false;
        };
        let words: Vec<&str> = inner.split_whitespace().collect();
        match words.as_slice() {
            ["profile", name] => *name == profile,
            [name] => *name == profile && profile == "default",
            _ => false,
        }
    };
    // The file's own line ending: that of its first line.
    let eol = match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    };
    // Each line with its ending, so that untouched lines are copied byte for byte.
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let content = |l: &str| -> String {
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l).to_owned()
    };
    let new_line = format!("mfa_serial = {serial}");
    let Some(start) = lines.iter().position(|l| header_matches(&content(l))) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        if !out.is_empty() {
            out.push_str(eol);
        }
        out += &format!("[{}]{eol}{new_line}{eol}", section_name(profile));
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| content(l).trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    let existing = (start + 1..end).find(|&i| {
        content(&lines[i])
            .trim_start()
            .split('=')
            .next()
            .is_some_and(|k| k.trim() == "mfa_serial")
    });
    match existing {
        Some(i) => {
            let ending = &lines[i][content(&lines[i]).len()..];
            lines[i] = format!("{new_line}{ending}");
        }
        None => {
            // After the section's last setting, before trailing blank lines.
            let mut at = end;
            while at > start + 1 && content(&lines[at - 1]).trim().is_empty() {
                at -= 1;
            }
            if lines[at - 1].ends_with('\n') {
                lines.insert(at, format!("{new_line}{eol}"));
            } else {
                // The file's last line, without an ending: so is the new one.
                lines[at - 1].push_str(eol);
                lines.insert(at, new_line);
            }
        }
    }
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_crlf_line_endings() {
        let before =
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nregion = x\r\n\r\n[profile b]\r\n";
        assert_eq!(
            add_mfa_serial(before, "work", "s"),
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nregion = x\r\nmfa_serial = s\r\n\r\n[profile b]\r\n"
        );
        assert_eq!(
            add_mfa_serial("[profile work]\r\nmfa_serial = old\r\n", "work", "s"),
            "[profile work]\r\nmfa_serial = s\r\n"
        );
        assert_eq!(
            add_mfa_serial("[default]\r\nregion = r", "work", "s"),
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nmfa_serial = s\r\n"
        );
        assert_eq!(
            add_mfa_serial("[profile work]\r\nregion = r", "work", "s"),
            "[profile work]\r\nregion = r\r\nmfa_serial = s"
        );
    }

    /// A scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stsmfa-enroll-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[cfg(unix)]
    #[test]
    fn backup_and_new_file_keep_the_old_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let config = dir.join("config");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for want in [0o600, 0o640] {
            std::fs::write(&config, "old\n").unwrap();
            std::fs::set_permissions(&config, PermissionsExt::from_mode(want)).unwrap();
            // A leftover backup that anyone may read must not stay so.
            std::fs::write(dir.join("config.stsmfa-backup"), "x").unwrap();
            std::fs::set_permissions(
                dir.join("config.stsmfa-backup"),
                PermissionsExt::from_mode(0o644),
            )
            .unwrap();
            let backup = write_atomically(&config, Some("old\n"), "new\n")
                .unwrap()
                .unwrap();
            assert_eq!(backup, dir.join("config.stsmfa-backup"));
            assert_eq!(std::fs::read_to_string(&backup).unwrap(), "old\n");
            assert_eq!(std::fs::read_to_string(&config).unwrap(), "new\n");
            assert_eq!(mode(&backup), want);
            assert_eq!(mode(&config), want);
        }
        // No old file: the new one is private.
        let fresh = dir.join("sub").join("config");
        assert_eq!(write_atomically(&fresh, None, "new\n").unwrap(), None);
        assert_eq!(mode(&fresh), 0o600);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().contains("tmp")),
            "{left:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_to_the_file() {
        let dir = scratch("links");
        std::fs::create_dir_all(dir.join("dotfiles")).unwrap();
        std::fs::write(dir.join("dotfiles/aws-config"), "[default]\n").unwrap();
        std::os::unix::fs::symlink("dotfiles/aws-config", dir.join("hop")).unwrap();
        std::os::unix::fs::symlink(dir.join("hop"), dir.join("config")).unwrap();
        let real = resolve_links(&dir.join("config"));
        assert_eq!(
            std::fs::canonicalize(&real).unwrap(),
            std::fs::canonicalize(dir.join("dotfiles/aws-config")).unwrap()
        );
        assert_eq!(
            resolve_links(&dir.join("dotfiles/aws-config")),
            dir.join("dotfiles/aws-config")
        );
        // A dangling link names where the file is to be created.
        std::os::unix::fs::symlink("nowhere/config", dir.join("dangling")).unwrap();
        assert_eq!(
            resolve_links(&dir.join("dangling")),
            dir.join("nowhere/config")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn adds_to_existing_section_keeping_everything_else() {
        let before = "# my config\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1 # keep\noutput = json\n\n[profile other]\nregion = x\n";
        let after = add_mfa_serial(before, "work", "arn:aws:iam::1:mfa/alice");
        assert_eq!(
            after,
            "# my config\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1 # keep\noutput = json\nmfa_serial = arn:aws:iam::1:mfa/alice\n\n[profile other]\nregion = x\n"
        );
    }

    #[test]
    fn replaces_an_old_serial_and_handles_default() {
        let before = "[default]\nmfa_serial = old\nregion = r\n";
        assert_eq!(
            add_mfa_serial(before, "default", "new"),
            "[default]\nmfa_serial = new\nregion = r\n"
        );
    }

    #[test]
    fn appends_a_missing_section() {
        assert_eq!(
            add_mfa_serial("", "work", "s"),
            "[profile work]\nmfa_serial = s\n"
        );
        assert_eq!(
            add_mfa_serial("[profile a]\nx = 1", "work", "s"),
            "[profile a]\nx = 1\n\n[profile work]\nmfa_serial = s\n"
        );
    }
}
