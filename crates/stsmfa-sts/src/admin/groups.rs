//! The three groups of the rollout (`--groups onboarding=…,enrolled=…,force=…`)
//! and reading a group's members, shared by setup, onboard and sync.

use super::{Iam, IamError};
use stsmfa_core::admin_cli::{GroupsArg, PolicyVariant};
use stsmfa_core::error::Fail;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// First sign-in, no MFA yet (the first-login policy).
    pub onboarding: String,
    /// MFA registered (the enrolled policy).
    pub enrolled: String,
    /// No MFA and not onboarding: confined to MFA setup (the force-mfa policy).
    pub force: String,
}

impl Groups {
    /// Each group with the policy variant `admin setup` attaches to it.
    pub fn with_variants(&self) -> [(&str, PolicyVariant); 3] {
        [
            (&self.onboarding, PolicyVariant::FirstLogin),
            (&self.enrolled, PolicyVariant::Enrolled),
            (&self.force, PolicyVariant::ForceMfa),
        ]
    }
}

/// Parses `--groups`; a role left out keeps its default name.
pub fn parse(arg: &GroupsArg) -> Result<Groups, Fail> {
    let mut g = Groups {
        onboarding: "NotYetLoginUsers".into(),
        enrolled: "MFARequired".into(),
        force: "ForceMFA".into(),
    };
    let usage = |what: &str| {
        Fail::usage(format!("--groups {}: {what}", arg.groups))
            .hint("write --groups onboarding=NotYetLoginUsers,enrolled=MFARequired,force=ForceMFA")
    };
    for part in arg
        .groups
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (role, name) = part
            .split_once('=')
            .ok_or_else(|| usage(&format!("'{part}' is not ROLE=NAME")))?;
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !valid {
            return Err(usage(&format!("'{name}' is not a valid IAM group name")));
        }
        let slot = match role.trim() {
            "onboarding" => &mut g.onboarding,
            "enrolled" => &mut g.enrolled,
            "force" => &mut g.force,
            other => {
                return Err(usage(&format!(
                    "unknown role '{other}' (onboarding, enrolled, force)"
                )));
            }
        };
        *slot = name.to_owned();
    }
    if g.onboarding == g.enrolled || g.onboarding == g.force || g.enrolled == g.force {
        return Err(usage("the three groups must have different names"));
    }
    Ok(g)
}

/// The user names in a group, every page of GetGroup.
pub fn members(iam: &Iam, group: &str) -> Result<Vec<String>, IamError> {
    let pages = iam.pages(
        "GetGroup",
        iam.iam
            .get_group()
            .group_name(group)
            .into_paginator()
            .send(),
    )?;
    Ok(pages
        .iter()
        .flat_map(|p| p.users())
        .map(|u| u.user_name().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> GroupsArg {
        GroupsArg { groups: s.into() }
    }

    #[test]
    fn roles_left_out_keep_their_default_names() {
        let g = parse(&arg("force=Confined")).unwrap();
        assert_eq!(g.onboarding, "NotYetLoginUsers");
        assert_eq!(g.enrolled, "MFARequired");
        assert_eq!(g.force, "Confined");
    }

    #[test]
    fn bad_groups_are_usage_errors() {
        for bad in [
            "force",
            "other=X",
            "force=bad name",
            "force=MFARequired",
            "enrolled=",
        ] {
            let e = parse(&arg(bad)).unwrap_err();
            assert_eq!(e.code, 2, "{bad}");
        }
    }
}
