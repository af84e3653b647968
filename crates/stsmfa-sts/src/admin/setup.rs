//! `admin setup`: the managed policies, the three groups with their policy
//! attached, and the password policy's AllowUsersToChangePassword. Every
//! change is one line on stdout; a second run finds nothing to change.

use super::groups::{self, Groups};
use super::policy;
use super::{Iam, IamError};
use serde_json::Value;
use stsmfa_core::admin_cli::{PolicyVariant, SetupArgs};
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

/// AWS keeps at most this many versions of a managed policy.
const MAX_VERSIONS: usize = 5;

/// Prints changes as they are made (or, in a dry run, as they would be).
struct Changes {
    dry_run: bool,
    count: usize,
}

impl Changes {
    fn made(&mut self, done: &str, would: &str) {
        self.count += 1;
        if self.dry_run {
            stsmfa_core::emit(&format!("would {would}\n"));
        } else {
            stsmfa_core::emit(&format!("{done}\n"));
        }
    }
}

pub fn setup(args: &SetupArgs) -> Result<u8, Fail> {
    let groups = groups::parse(&args.groups)?;
    let iam = Iam::connect(&args.conn)?;
    let fail = |e: IamError| e.to_fail(&iam.profile);
    let account = iam.account().to_owned();
    let mut changes = Changes {
        dry_run: args.dry_run,
        count: 0,
    };
    let mut left: Vec<String> = Vec::new();

    for (_, variant) in groups.with_variants() {
        if let Some(why) =
            ensure_policy(&iam, &account, variant, args, &mut changes).map_err(fail)?
        {
            left.push(why);
        }
    }
    ensure_groups(&iam, &account, &groups, &mut changes).map_err(fail)?;
    if let Some(why) = ensure_password_change(&iam, args, &mut changes).map_err(fail)? {
        left.push(why);
    }

    if changes.count == 0 && left.is_empty() {
        stsmfa_core::emit("nothing to change\n");
    } else if args.dry_run {
        stsmfa_core::emit(&format!("dry run: {} change(s) not made\n", changes.count));
    }
    match left.as_slice() {
        [] => Ok(0),
        [one] => Err(fail!("{one}").hint("run it again with --yes to make the change")),
        many => Err(fail!("{} (and {} more)", many[0], many.len() - 1)
            .hint("run it again with --yes to make the changes")),
    }
}

fn policy_arn(account: &str, variant: PolicyVariant) -> String {
    format!(
        "arn:aws:iam::{account}:policy/{}",
        policy::managed_name(variant)
    )
}

/// Creates the variant's managed policy, or brings its default version up
/// to date (with `--yes`). `Some(reason)` when a change was left undone.
fn ensure_policy(
    iam: &Iam,
    account: &str,
    variant: PolicyVariant,
    args: &SetupArgs,
    changes: &mut Changes,
) -> Result<Option<String>, IamError> {
    let name = policy::managed_name(variant);
    let arn = policy_arn(account, variant);
    let wanted = policy::document(variant, Some(account));
    let wanted_text = policy::pretty(&wanted);
    let existing = match iam.call("GetPolicy", iam.iam.get_policy().policy_arn(&arn).send()) {
        Ok(out) => out.policy().cloned(),
        Err(IamError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let Some(existing) = existing else {
        if !args.dry_run {
            iam.call(
                "CreatePolicy",
                iam.iam
                    .create_policy()
                    .policy_name(&name)
                    .description(format!(
                        "stsmfa {}: MFA required (stsmfa admin policy --variant {})",
                        policy::variant_name(variant),
                        policy::variant_name(variant)
                    ))
                    .policy_document(&wanted_text)
                    .send(),
            )?;
        }
        changes.made(
            &format!("created policy {name}"),
            &format!("create policy {name}"),
        );
        return Ok(None);
    };
    let version = existing.default_version_id().unwrap_or("v1").to_owned();
    let out = iam.call(
        "GetPolicyVersion",
        iam.iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&version)
            .send(),
    )?;
    let current_text = out
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or_default()
        .to_owned();
    let current: Option<Value> = super::authz::document(&current_text).ok();
    if current.as_ref() == Some(&wanted) {
        return Ok(None);
    }
    let shown = current.as_ref().map(policy::pretty).unwrap_or(current_text);
    stsmfa_core::emit(&format!(
        "policy {name} ({version}) differs from stsmfa's:\n{}",
        line_diff(&shown, &wanted_text)
    ));
    if args.dry_run {
        changes.made(
            "",
            &format!("make the content above policy {name}'s new default version"),
        );
        return Ok(None);
    }
    if !args.yes {
        stsmfa_core::emit(&format!(
            "not changed: --yes makes the content above policy {name}'s new default version\n"
        ));
        return Ok(Some(format!("policy {name} differs and was left as it is")));
    }
    let versions = iam.call(
        "ListPolicyVersions",
        iam.iam.list_policy_versions().policy_arn(&arn).send(),
    )?;
    let mut old: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    if versions.versions().len() >= MAX_VERSIONS {
        old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(0));
        if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
            iam.call(
                "DeletePolicyVersion",
                iam.iam
                    .delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(oldest)
                    .send(),
            )?;
            changes.made(
                &format!("deleted version {oldest} of policy {name} (AWS keeps {MAX_VERSIONS})"),
                "",
            );
        }
    }
    let out = iam.call(
        "CreatePolicyVersion",
        iam.iam
            .create_policy_version()
            .policy_arn(&arn)
            .policy_document(&wanted_text)
            .set_as_default(true)
            .send(),
    )?;
    let new = out
        .policy_version()
        .and_then(|v| v.version_id())
        .unwrap_or("?");
    changes.made(
        &format!("updated policy {name} (new default version {new})"),
        "",
    );
    Ok(None)
}

/// Creates missing groups and attaches each one's policy.
fn ensure_groups(
    iam: &Iam,
    account: &str,
    groups: &Groups,
    changes: &mut Changes,
) -> Result<(), IamError> {
    for (group, variant) in groups.with_variants() {
        let exists = match iam.call(
            "GetGroup",
            iam.iam.get_group().group_name(group).max_items(1).send(),
        ) {
            Ok(_) => true,
            Err(IamError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if !exists {
            if !changes.dry_run {
                iam.call(
                    "CreateGroup",
                    iam.iam.create_group().group_name(group).send(),
                )?;
            }
            changes.made(
                &format!("created group {group}"),
                &format!("create group {group}"),
            );
        }
        let arn = policy_arn(account, variant);
        let attached = exists && {
            let pages = iam.pages(
                "ListAttachedGroupPolicies",
                iam.iam
                    .list_attached_group_policies()
                    .group_name(group)
                    .into_paginator()
                    .send(),
            )?;
            pages
                .iter()
                .flat_map(|p| p.attached_policies())
                .any(|p| p.policy_arn() == Some(arn.as_str()))
        };
        if !attached {
            if !changes.dry_run {
                iam.call(
                    "AttachGroupPolicy",
                    iam.iam
                        .attach_group_policy()
                        .group_name(group)
                        .policy_arn(&arn)
                        .send(),
                )?;
            }
            let name = policy::managed_name(variant);
            changes.made(
                &format!("attached policy {name} to group {group}"),
                &format!("attach policy {name} to group {group}"),
            );
        }
    }
    Ok(())
}

/// Turns on AllowUsersToChangePassword, keeping the other settings (the
/// update call replaces all of them). Asks first unless `--yes`.
fn ensure_password_change(
    iam: &Iam,
    args: &SetupArgs,
    changes: &mut Changes,
) -> Result<Option<String>, IamError> {
    let current = match iam.call(
        "GetAccountPasswordPolicy",
        iam.iam.get_account_password_policy().send(),
    ) {
        Ok(out) => out.password_policy().cloned(),
        Err(IamError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if current
        .as_ref()
        .is_some_and(|p| p.allow_users_to_change_password())
    {
        return Ok(None);
    }
    const WHAT: &str = "turn on AllowUsersToChangePassword in the account password policy";
    if args.dry_run {
        changes.made("", WHAT);
        return Ok(None);
    }
    if !args.yes {
        let question = "Turn on AllowUsersToChangePassword in the account password policy \
                        (without it, IAM attaches IAMUserChangePassword to new users)? [Y/n] ";
        let asked = stsmfa_core::prompt::Tty::open()
            .ok()
            .flatten()
            .map(|mut tty| tty.yes(question));
        match asked {
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                stsmfa_core::emit("not changed: AllowUsersToChangePassword stays off\n");
                return Ok(Some("AllowUsersToChangePassword was left off".into()));
            }
            _ => {
                stsmfa_core::emit(&format!(
                    "not changed (no terminal to ask on): --yes would {WHAT}\n"
                ));
                return Ok(Some("AllowUsersToChangePassword was left off".into()));
            }
        }
    }
    let mut update = iam
        .iam
        .update_account_password_policy()
        .allow_users_to_change_password(true);
    if let Some(p) = &current {
        update = update
            .set_minimum_password_length(p.minimum_password_length())
            .require_symbols(p.require_symbols())
            .require_numbers(p.require_numbers())
            .require_uppercase_characters(p.require_uppercase_characters())
            .require_lowercase_characters(p.require_lowercase_characters())
            .set_max_password_age(p.max_password_age())
            .set_password_reuse_prevention(p.password_reuse_prevention())
            .set_hard_expiry(p.hard_expiry());
    }
    iam.call("UpdateAccountPasswordPolicy", update.send())?;
    changes.made(
        "turned on AllowUsersToChangePassword in the account password policy",
        WHAT,
    );
    Ok(None)
}

/// A line diff (`-` old, `+` new, two spaces same), from the longest
/// common subsequence of lines; policy documents are small.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out += &format!("  {}\n", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("+ {}\n", b[j]);
            j += 1;
        } else {
            out += &format!("- {}\n", a[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_removed_and_added_lines() {
        let d = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(d, "  a\n+ x\n- b\n  c\n+ d\n");
        assert_eq!(line_diff("same\n", "same\n"), "  same\n");
    }
}
