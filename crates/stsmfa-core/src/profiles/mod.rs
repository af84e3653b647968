//! The AWS config and credentials files, read by the rules the AWS SDKs
//! follow (`[profile x]` vs `[default]`, both files merged, the credentials
//! file winning, key names case-insensitive, inline comments only after
//! white space, indented continuation lines).
//!
//! The small `stsmfa` binary serves every cache hit and must not link the AWS
//! SDK, so it cannot use aws-config's parser; this one is checked against it
//! by a differential property test (`tests/props.rs`).

pub mod edit;
pub mod keys_edit;

use crate::error::Fail;
use crate::fail;
use crate::{EnvLookup, real_env};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// White space as the SDK trims it: spaces and tabs only.
const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];

/// Which file a text came from: sections are named differently in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]` and `[profile NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]`.
    Credentials,
}

/// A file that does not parse, as the SDK would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: &'static str,
}

/// One profile's keys (lower-cased) and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    name: String,
    properties: HashMap<String, String>,
}

impl Profile {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` (any case), if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Every profile of both files, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileSet {
    profiles: HashMap<String, Profile>,
}

impl ProfileSet {
    /// Parses the files' texts, config first, as the SDK merges them.
    pub fn parse(files: &[(FileKind, &str)]) -> Result<ProfileSet, (FileKind, ParseError)> {
        let mut set = ProfileSet::default();
        for (kind, text) in files {
            let raw = parse_sections(text).map_err(|e| (*kind, e))?;
            set.merge(raw, *kind);
        }
        Ok(set)
    }

    pub fn get_profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn profiles(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    fn merge(&mut self, raw: Vec<RawSection>, kind: FileKind) {
        let named: Vec<(String, RawSection)> = raw
            .into_iter()
            .filter_map(|s| profile_name(&s.header, kind).map(|n| (n, s)))
            .collect();
        // `[profile default]` beats `[default]` in the config file.
        let prefixed_default = kind == FileKind::Config
            && named
                .iter()
                .any(|(n, s)| n == "default" && s.header.trim_matches(WHITESPACE) != "default");
        for (name, section) in named {
            if prefixed_default && section.header.trim_matches(WHITESPACE) == "default" {
                continue;
            }
            let profile = self
                .profiles
                .entry(name.clone())
                .or_insert_with(|| Profile {
                    name,
                    properties: HashMap::new(),
                });
            for (k, v) in section.properties {
                if is_identifier(&k) {
                    profile.properties.insert(k, v);
                }
            }
        }
    }
}

/// A section as written: its header text and its properties (later keys of
/// the same name win, and a header seen twice continues the same section).
struct RawSection {
    header: String,
    properties: Vec<(String, String)>,
}

/// The profile a section header names, or `None` for sections that are not
/// profiles (`[sso-session x]`, `[services x]`) or that the SDK ignores.
fn profile_name(header: &str, kind: FileKind) -> Option<String> {
    let header = header.trim_matches(WHITESPACE);
    let (prefix, suffix) = match header.split_once(WHITESPACE) {
        Some((p, s)) => (Some(p.trim()), s.trim()),
        None => (None, header.trim()),
    };
    match (kind, prefix) {
        (FileKind::Config, Some("profile")) if is_identifier(suffix) => Some(suffix.to_owned()),
        (FileKind::Config, None) if suffix == "default" => Some(suffix.to_owned()),
        (FileKind::Credentials, None) if is_identifier(suffix) => Some(suffix.to_owned()),
        _ => None,
    }
}

/// The characters the SDK allows in profile names and keys.
fn is_identifier(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
}

fn parse_sections(text: &str) -> Result<Vec<RawSection>, ParseError> {
    let mut sections: Vec<RawSection> = Vec::new();
    // Index of the current section, and of its last property while it can
    // still take continuation lines (with whether it opened a sub-property list).
    let mut current: Option<usize> = None;
    let mut last: Option<(usize, bool)> = None;
    for (n, line) in text.lines().enumerate() {
        let error = |message| ParseError {
            line: n + 1,
            message,
        };
        if line.trim_matches(WHITESPACE).is_empty() || line.starts_with(COMMENT) {
            continue;
        }
        if line.starts_with('[') {
            let header = strip_comment(line, false);
            let name = header
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .ok_or(error("Profile definition must end with ']'"))?;
            current = Some(match sections.iter().position(|s| s.header == name) {
                Some(i) => i,
                None => {
                    sections.push(RawSection {
                        header: name.to_owned(),
                        properties: Vec::new(),
                    });
                    sections.len() - 1
                }
            });
            last = None;
        } else if line.starts_with(WHITESPACE) {
            let section = current.ok_or(error("Expected a profile definition"))?;
            let (prop, sub) =
                last.ok_or(error("Expected a property definition, found continuation"))?;
            if sub && !line.trim_matches(WHITESPACE).is_empty() {
                property(line).map_err(|m| error(m.sub))?;
            }
            let value = &mut sections[section].properties[prop].1;
            value.push('\n');
            value.push_str(line.trim_matches(WHITESPACE));
        } else {
            let section = current.ok_or(error("Expected a profile definition"))?;
            let (k, v) = property(line).map_err(|m| error(m.top))?;
            let props = &mut sections[section].properties;
            let sub = v.is_empty();
            let at = match props.iter().position(|(key, _)| *key == k) {
                Some(i) => {
                    props[i].1 = v;
                    i
                }
                None => {
                    props.push((k, v));
                    props.len() - 1
                }
            };
            last = Some((at, sub));
        }
    }
    Ok(sections)
}

/// Messages for a bad property line, as a property or as a sub-property.
struct PropertyError {
    top: &'static str,
    sub: &'static str,
}

fn property(line: &str) -> Result<(String, String), PropertyError> {
    let line = strip_comment(line, true);
    let (k, v) = line.split_once('=').ok_or(PropertyError {
        top: "Expected an '=' sign defining a property",
        sub: "Expected an '=' sign defining a sub-property",
    })?;
    let k = k.trim_matches(WHITESPACE);
    if k.is_empty() {
        return Err(PropertyError {
            top: "Property did not have a name",
            sub: "Sub-property did not have a name",
        });
    }
    Ok((
        k.to_ascii_lowercase(),
        v.trim_matches(WHITESPACE).to_owned(),
    ))
}

/// The line without its comment. In property lines a comment starts only
/// after white space (`key = a#b` keeps `a#b`); in headers anywhere.
fn strip_comment(line: &str, needs_whitespace: bool) -> &str {
    let line = line.trim_matches(WHITESPACE);
    let mut prev_ws = false;
    for (i, c) in line.char_indices() {
        if COMMENT.contains(&c) && (prev_ws || !needs_whitespace) {
            return line[..i].trim_matches(WHITESPACE);
        }
        prev_ws = c.is_whitespace();
    }
    line
}

/// The config and credentials files, where the SDK looks for them.
pub fn config_files(env: EnvLookup) -> [PathBuf; 2] {
    let home = env("HOME")
        .or_else(|| env("USERPROFILE"))
        .unwrap_or_default();
    let expand = |p: String| match p.strip_prefix("~/") {
        Some(rest) => PathBuf::from(&home).join(rest),
        None => PathBuf::from(p),
    };
    [
        expand(env("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into())),
        expand(env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into())),
    ]
}

/// Loads both AWS config files. A missing file is an empty one. The SDK
/// silently skips a file it cannot read or decode; for stsmfa that would
/// silently drop mfa_serial or the keys, so each is an error naming the file.
pub fn load(env: EnvLookup) -> Result<ProfileSet, Fail> {
    let [config, credentials] = config_files(env);
    let texts = [read_file(&config)?, read_file(&credentials)?];
    ProfileSet::parse(&[
        (FileKind::Config, &texts[0]),
        (FileKind::Credentials, &texts[1]),
    ])
    .map_err(|(kind, e)| {
        let path = if kind == FileKind::Config {
            &config
        } else {
            &credentials
        };
        fail!("cannot read {}: {e}", path.display())
            .hint("fix that line; the AWS CLI and SDKs refuse the file too")
    })
}

/// The real files, as the process environment names them.
pub fn load_real() -> Result<ProfileSet, Fail> {
    load(&real_env)
}

fn read_file(path: &Path) -> Result<String, Fail> {
    let problem = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "it is a directory".to_owned(),
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) => match not_utf8(&bytes) {
                None => return Ok(String::from_utf8(bytes).expect("checked")),
                Some(why) => why,
            },
            Err(e) => e.to_string(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => e.to_string(),
    };
    Err(fail!("cannot read {}: {problem}", path.display())
        .hint("fix the file or its permissions, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at the right one"))
}

/// Why the SDK would silently ignore this file: it drops a whole file that
/// is not UTF-8, and with it mfa_serial or the keys.
fn not_utf8(bytes: &[u8]) -> Option<String> {
    let e = std::str::from_utf8(bytes).err()?;
    let line = bytes[..e.valid_up_to()]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1;
    Some(format!(
        "line {line} is not valid UTF-8 (the AWS SDK would ignore the whole file)"
    ))
}

/// Every profile name in the AWS config files (for completions).
pub fn profile_names() -> Vec<String> {
    load_real()
        .map(|set| set.profiles().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(config: &str, credentials: &str) -> ProfileSet {
        ProfileSet::parse(&[
            (FileKind::Config, config),
            (FileKind::Credentials, credentials),
        ])
        .unwrap()
    }

    #[test]
    fn config_and_credentials_merge_with_the_credentials_file_winning() {
        let s = set(
            "[default]\nregion = us-east-1\n[profile work]\nregion = eu-west-1 # comment\nMFA_Serial = arn:aws:iam::1:mfa/a\nurl = http://x#frag\n[work]\nignored = 1\n[sso-session s]\nsso_region = x\n",
            "[work]\naws_access_key_id = AKIA\nregion = ap-south-1\n[profile nope]\nx = 1\n",
        );
        let work = s.get_profile("work").unwrap();
        assert_eq!(work.get("region"), Some("ap-south-1"));
        assert_eq!(work.get("mfa_serial"), Some("arn:aws:iam::1:mfa/a"));
        assert_eq!(work.get("URL"), Some("http://x#frag"));
        assert_eq!(work.get("aws_access_key_id"), Some("AKIA"));
        assert_eq!(
            work.get("ignored"),
            None,
            "[work] in config is not a profile"
        );
        assert!(s.get_profile("nope").is_none());
        assert!(s.get_profile("s").is_none());
        assert_eq!(
            s.get_profile("default").unwrap().get("region"),
            Some("us-east-1")
        );
    }

    #[test]
    fn profile_default_beats_default_and_continuations_join() {
        let s = set(
            "[profile default]\nregion = b\ns3 =\n  max_concurrent_requests = 10\n[default]\nregion = a\n",
            "",
        );
        let d = s.get_profile("default").unwrap();
        assert_eq!(d.get("region"), Some("b"));
        assert_eq!(d.get("s3"), Some("\nmax_concurrent_requests = 10"));
    }

    #[test]
    fn non_utf8_files_are_named_with_their_line() {
        assert_eq!(not_utf8(b"[default]\nregion = x\n"), None);
        let why = not_utf8(b"[default]\nregion = x\n# caf\xe9\n").unwrap();
        assert!(why.contains("line 3"), "{why}");
    }

    #[test]
    fn crlf_and_bad_lines() {
        let s = set("[profile a]\r\nregion = r\r\n", "");
        assert_eq!(s.get_profile("a").unwrap().get("region"), Some("r"));
        let e = ProfileSet::parse(&[(FileKind::Config, "region = x\n")]).unwrap_err();
        assert_eq!(e.1.line, 1);
        let e = ProfileSet::parse(&[(FileKind::Credentials, "[a]\n\nno equals\n")]).unwrap_err();
        assert_eq!((e.0, e.1.line), (FileKind::Credentials, 3));
    }
}
