//! `admin sync`: keeps every user either enrolled or confined to MFA setup.
//!
//! It reads the credential report (MFA of every user, one CSV) and the three
//! groups' members, plans the moves with a pure function, and checks only
//! the users who would move (their exempt tag, one call each or 1,000 users a
//! page, whichever is fewer; their MFA devices): the calls grow with the
//! groups and the changes, not with the users. Each move adds the
//! new group before it removes the old one, so no failure leaves a user in
//! neither.

use super::groups::{self, Groups};
use super::{Iam, IamError, report};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use stsmfa_core::admin_cli::SyncArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

/// The tag that keeps a user out of sync.
pub const EXEMPT_TAG: (&str, &str) = ("stsmfa:exempt", "true");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Onboarding,
    Enrolled,
    Force,
}

/// Who is in which group now.
#[derive(Debug, Default, Clone)]
pub struct Members {
    pub onboarding: HashSet<String>,
    pub enrolled: HashSet<String>,
    pub force: HashSet<String>,
}

impl Members {
    fn has(&self, role: Role, user: &str) -> bool {
        match role {
            Role::Onboarding => self.onboarding.contains(user),
            Role::Enrolled => self.enrolled.contains(user),
            Role::Force => self.force.contains(user),
        }
    }
}

/// One user's planned move: groups to add (first), then groups to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub user: String,
    pub mfa: bool,
    pub add: Vec<Role>,
    pub remove: Vec<Role>,
}

/// The moves the rules ask for; `users` are (name, MFA active) from the
/// credential report, `exempt` users are left alone.
///
/// - MFA active: into the enrolled group if in none of ours, or leaving
///   onboarding or force; out of onboarding and force.
/// - no MFA, not onboarding: into the force group.
/// - no MFA, onboarding: stays (the first-login policy confines them).
pub fn plan(users: &[(String, bool)], members: &Members, exempt: &HashSet<String>) -> Vec<Change> {
    let mut changes = Vec::new();
    for (user, mfa) in users {
        if exempt.contains(user) {
            continue;
        }
        let in_group = |r| members.has(r, user);
        let mut add = Vec::new();
        let mut remove = Vec::new();
        if *mfa {
            let leaving: Vec<Role> = [Role::Onboarding, Role::Force]
                .into_iter()
                .filter(|r| in_group(*r))
                .collect();
            let in_none =
                !in_group(Role::Onboarding) && !in_group(Role::Enrolled) && !in_group(Role::Force);
            if !in_group(Role::Enrolled) && (in_none || !leaving.is_empty()) {
                add.push(Role::Enrolled);
            }
            remove = leaving;
        } else if !in_group(Role::Onboarding) && !in_group(Role::Force) {
            add.push(Role::Force);
        }
        if !add.is_empty() || !remove.is_empty() {
            changes.push(Change {
                user: user.clone(),
                mfa: *mfa,
                add,
                remove,
            });
        }
    }
    changes
}

fn group_name(groups: &Groups, role: Role) -> &str {
    match role {
        Role::Onboarding => &groups.onboarding,
        Role::Enrolled => &groups.enrolled,
        Role::Force => &groups.force,
    }
}

/// One change as a line: what was done, or in a dry run what would be.
fn describe(c: &Change, g: &Groups, dry_run: bool) -> String {
    let names = |roles: &[Role]| {
        roles
            .iter()
            .map(|r| group_name(g, *r))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let why = if c.mfa { "MFA active" } else { "no MFA device" };
    let verb = |done: &str, base: &str| {
        if dry_run {
            format!("would {base}")
        } else {
            done.to_owned()
        }
    };
    match (c.add.is_empty(), c.remove.is_empty()) {
        (false, false) => format!(
            "{} {} from {} to {} ({why})",
            verb("moved", "move"),
            c.user,
            names(&c.remove),
            names(&c.add)
        ),
        (false, true) => format!(
            "{} {} to {} ({why})",
            verb("added", "add"),
            c.user,
            names(&c.add)
        ),
        _ => format!(
            "{} {} from {} ({why})",
            verb("removed", "remove"),
            c.user,
            names(&c.remove)
        ),
    }
}

pub fn sync(args: &SyncArgs) -> Result<u8, Fail> {
    let groups = groups::parse(&args.groups)?;
    let iam = Iam::connect(&args.conn)?;
    let fail = |e: IamError| e.to_fail(&iam.profile);

    let rows = report::fetch(&iam, &std::thread::sleep).map_err(fail)?;
    let mut members = Members::default();
    for (role, set) in [
        (Role::Onboarding, &mut members.onboarding),
        (Role::Enrolled, &mut members.enrolled),
        (Role::Force, &mut members.force),
    ] {
        let name = group_name(&groups, role);
        *set = groups::members(&iam, name)
            .map_err(|e| match e {
                IamError::NotFound { .. } => fail!("the group {name} does not exist")
                    .hint("run `stsmfa admin setup` first, or name the groups with --groups"),
                e => fail(e),
            })?
            .into_iter()
            .collect();
    }

    let mut exempt: HashSet<String> = args.exempt.iter().cloned().collect();
    // The user sync runs as (a cron service user) never confines itself.
    if let Some(me) = rows.iter().find(|r| r.arn == iam.caller_arn()) {
        exempt.insert(me.user.clone());
    }
    let assigned = assigned_virtual_devices(&iam).map_err(fail)?;
    let users = mfa_of(&rows, assigned.as_ref());
    let changes = plan(&users, &members, &exempt);

    // Only users who would move cost calls: their tags, and their devices
    // now (the report can be hours old).
    let tagged = tagged_exempt(&iam, &changes, rows.len()).map_err(fail)?;
    let checked: Vec<Change> = changes
        .into_iter()
        .filter(|c| !tagged.contains(&c.user))
        .collect();
    let mut recheck: Vec<(String, bool)> = Vec::new();
    for c in &checked {
        recheck.push((c.user.clone(), has_mfa(&iam, &c.user).map_err(fail)?));
    }
    recheck.sort();
    recheck.dedup();
    let changes = plan(&recheck, &members, &exempt);

    let mut failures: Vec<String> = Vec::new();
    let mut applied: Vec<&Change> = Vec::new();
    for c in &changes {
        if args.dry_run {
            applied.push(c);
            continue;
        }
        match apply(&iam, &groups, c) {
            Ok(()) => applied.push(c),
            Err(msg) => failures.push(msg),
        }
    }

    if args.json {
        // Password and keys tell a service user (exempt it?) from a person.
        let entry = |c: &Change| {
            let row = rows.iter().find(|r| r.user == c.user);
            json!({
                "user": c.user,
                "mfa_active": c.mfa,
                "password_enabled": row.is_some_and(|r| r.password_enabled),
                "active_keys": row.map_or(0, |r| r.active_keys().count()),
                "add": c.add.iter().map(|r| group_name(&groups, *r)).collect::<Vec<_>>(),
                "remove": c.remove.iter().map(|r| group_name(&groups, *r)).collect::<Vec<_>>(),
            })
        };
        let mut counts = BTreeMap::new();
        counts.insert("users", rows.len());
        counts.insert("changed", applied.len());
        counts.insert("failed", failures.len());
        counts.insert("exempt", exempt.len() + tagged.len());
        let doc = json!({
            "dry_run": args.dry_run,
            "changes": applied.iter().map(|c| entry(c)).collect::<Vec<_>>(),
            "failures": failures,
            "counts": counts,
        });
        stsmfa_core::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        for c in &applied {
            stsmfa_core::emit(&format!("{}\n", describe(c, &groups, args.dry_run)));
        }
        if !args.quiet {
            if applied.is_empty() && failures.is_empty() {
                stsmfa_core::emit(&format!(
                    "nothing to change ({} users, {} exempt)\n",
                    rows.len(),
                    exempt.len() + tagged.len()
                ));
            } else if args.dry_run {
                stsmfa_core::emit(&format!(
                    "dry run: {} user(s) would change\n",
                    applied.len()
                ));
            } else {
                stsmfa_core::emit(&format!(
                    "{} user(s) changed, {} of {} users exempt\n",
                    applied.len(),
                    exempt.len() + tagged.len(),
                    rows.len()
                ));
            }
        }
    }
    match failures.as_slice() {
        [] => Ok(0),
        [first, rest @ ..] => {
            let mut f = fail!(
                "sync: {} of {} change(s) failed: {first}{}",
                failures.len(),
                changes.len(),
                if rest.is_empty() {
                    String::new()
                } else {
                    format!(" (and {} more)", rest.len())
                }
            );
            f = f.hint(format!(
                "{} change(s) were made; a user whose move failed keeps the groups they had",
                applied.len()
            ));
            f = f.hint("iam:AddUserToGroup and iam:RemoveUserFromGroup are needed on the groups; run sync again");
            Err(f)
        }
    }
}

/// Adds first, then removes: a failure never leaves the user in neither group.
fn apply(iam: &Iam, groups: &Groups, c: &Change) -> Result<(), String> {
    let profile = &iam.profile;
    for r in &c.add {
        let g = group_name(groups, *r);
        iam.call(
            "AddUserToGroup",
            iam.iam
                .add_user_to_group()
                .group_name(g)
                .user_name(&c.user)
                .send(),
        )
        .map_err(|e| format!("{}: {}", c.user, e.to_fail(profile).message))?;
    }
    for r in &c.remove {
        let g = group_name(groups, *r);
        iam.call(
            "RemoveUserFromGroup",
            iam.iam
                .remove_user_from_group()
                .group_name(g)
                .user_name(&c.user)
                .send(),
        )
        .map_err(|e| format!("{}: {}", c.user, e.to_fail(profile).message))?;
    }
    Ok(())
}

/// Each user with whether they have MFA: the report's `mfa_active`, or a
/// virtual device assigned now (the report can be hours old; the device
/// list is current and one call per 1000 devices).
pub fn mfa_of(
    rows: &[report::ReportRow],
    assigned: Option<&BTreeSet<String>>,
) -> Vec<(String, bool)> {
    rows.iter()
        .map(|r| {
            let now = assigned.is_some_and(|a| a.contains(&r.user));
            (r.user.clone(), r.mfa_active || now)
        })
        .collect()
}

/// The users with an assigned virtual MFA device; `None` (with a warning)
/// when the admin may not list them.
fn assigned_virtual_devices(iam: &Iam) -> Result<Option<BTreeSet<String>>, IamError> {
    match report::virtual_device_users(iam) {
        Ok(users) => Ok(Some(users)),
        Err(IamError::Denied { .. }) => {
            stsmfa_core::warn(
                "iam:ListVirtualMFADevices is denied: MFA as the credential report has it (up to 4 hours old)",
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Users a page of GetAccountAuthorizationDetails lists (its maximum).
const DETAILS_PAGE: usize = 1000;

/// Reading every user's tags in pages of 1,000, or one ListUserTags per user?
/// Whichever takes fewer calls, so service users tagged exempt (who would
/// move on every run) cost a page, not a call each.
fn tags_in_pages(candidates: usize, users: usize) -> bool {
    candidates > users.div_ceil(DETAILS_PAGE).max(1)
}

/// The users among `changes` tagged exempt.
fn tagged_exempt(
    iam: &Iam,
    changes: &[Change],
    users: usize,
) -> Result<BTreeSet<String>, IamError> {
    let mut wanted: BTreeSet<&str> = changes.iter().map(|c| c.user.as_str()).collect();
    if tags_in_pages(wanted.len(), users) {
        match exempt_users(iam) {
            Ok(all) => {
                wanted.retain(|u| all.contains(*u));
                return Ok(wanted.into_iter().map(str::to_owned).collect());
            }
            Err(IamError::Denied { .. }) => stsmfa_core::warn(
                "iam:GetAccountAuthorizationDetails is denied: reading the exempt tag one user at a time (iam:ListUserTags); allow it and the tags take a call per 1,000 users",
            ),
            Err(e) => return Err(e),
        }
    }
    let mut out = BTreeSet::new();
    for user in wanted {
        if is_tagged_exempt(iam, user)? {
            out.insert(user.to_owned());
        }
    }
    Ok(out)
}

fn is_exempt_tag(t: &aws_sdk_iam::types::Tag) -> bool {
    t.key() == EXEMPT_TAG.0 && t.value().eq_ignore_ascii_case(EXEMPT_TAG.1)
}

/// Every user of the account tagged exempt, from the users' details.
fn exempt_users(iam: &Iam) -> Result<BTreeSet<String>, IamError> {
    let pages = iam.pages(
        "GetAccountAuthorizationDetails",
        iam.iam
            .get_account_authorization_details()
            .filter(aws_sdk_iam::types::EntityType::User)
            .max_items(DETAILS_PAGE as i32)
            .into_paginator()
            .send(),
    )?;
    Ok(pages
        .iter()
        .flat_map(|p| p.user_detail_list())
        .filter(|u| u.tags().iter().any(is_exempt_tag))
        .filter_map(|u| u.user_name().map(str::to_owned))
        .collect())
}

fn is_tagged_exempt(iam: &Iam, user: &str) -> Result<bool, IamError> {
    let out = iam.call(
        "ListUserTags",
        iam.iam.list_user_tags().user_name(user).send(),
    )?;
    Ok(out.tags().iter().any(is_exempt_tag))
}

fn has_mfa(iam: &Iam, user: &str) -> Result<bool, IamError> {
    let out = iam.call(
        "ListMFADevices",
        iam.iam.list_mfa_devices().user_name(user).send(),
    )?;
    Ok(!out.mfa_devices().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_come_in_pages_only_when_that_takes_fewer_calls() {
        // One candidate: one ListUserTags, not a page.
        assert!(!tags_in_pages(1, 305));
        assert!(tags_in_pages(2, 305));
        assert!(tags_in_pages(304, 305));
        // 2,500 users are three pages: three candidates cost as much.
        assert!(!tags_in_pages(3, 2500));
        assert!(tags_in_pages(4, 2500));
        assert!(!tags_in_pages(0, 0));
    }

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn users(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(u, m)| (u.to_string(), *m)).collect()
    }

    fn one(user: &str, mfa: bool, m: &Members) -> Option<(Vec<Role>, Vec<Role>)> {
        plan(&users(&[(user, mfa)]), m, &HashSet::new())
            .pop()
            .map(|c| (c.add, c.remove))
    }

    fn members(onboarding: &[&str], enrolled: &[&str], force: &[&str]) -> Members {
        Members {
            onboarding: set(onboarding),
            enrolled: set(enrolled),
            force: set(force),
        }
    }

    #[test]
    fn onboarding_users_with_mfa_move_to_enrolled() {
        let m = members(&["bob"], &[], &[]);
        assert_eq!(
            one("bob", true, &m),
            Some((vec![Role::Enrolled], vec![Role::Onboarding]))
        );
    }

    #[test]
    fn onboarding_users_without_mfa_stay() {
        let m = members(&["bob"], &[], &[]);
        assert_eq!(one("bob", false, &m), None);
    }

    #[test]
    fn users_without_mfa_outside_onboarding_are_confined() {
        let none = members(&[], &[], &[]);
        assert_eq!(one("eve", false, &none), Some((vec![Role::Force], vec![])));
        let enrolled = members(&[], &["eve"], &[]);
        assert_eq!(
            one("eve", false, &enrolled),
            Some((vec![Role::Force], vec![]))
        );
        let already = members(&[], &[], &["eve"]);
        assert_eq!(one("eve", false, &already), None);
    }

    #[test]
    fn users_with_mfa_leave_the_force_group_for_enrolled() {
        let m = members(&[], &[], &["dan"]);
        assert_eq!(
            one("dan", true, &m),
            Some((vec![Role::Enrolled], vec![Role::Force]))
        );
        let both = members(&[], &["dan"], &["dan"]);
        assert_eq!(one("dan", true, &both), Some((vec![], vec![Role::Force])));
    }

    #[test]
    fn users_with_mfa_in_no_group_are_enrolled_and_enrolled_ones_stay() {
        let none = members(&[], &[], &[]);
        assert_eq!(
            one("amy", true, &none),
            Some((vec![Role::Enrolled], vec![]))
        );
        let enrolled = members(&[], &["amy"], &[]);
        assert_eq!(one("amy", true, &enrolled), None);
    }

    #[test]
    fn every_move_adds_before_it_removes_and_keeps_a_group() {
        let m = members(&["a", "c"], &["c"], &["b", "d"]);
        let all = users(&[
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false),
        ]);
        for c in plan(&all, &m, &HashSet::new()) {
            let after: Vec<Role> = [Role::Onboarding, Role::Enrolled, Role::Force]
                .into_iter()
                .filter(|r| (m.has(*r, &c.user) || c.add.contains(r)) && !c.remove.contains(r))
                .collect();
            assert!(!after.is_empty(), "{c:?} leaves {} in no group", c.user);
        }
    }

    #[test]
    fn exempt_users_are_left_alone_whatever_they_have() {
        let m = members(&[], &[], &[]);
        // a service user: no password, no keys, no MFA: not excluded unless exempt
        let svc = users(&[("svc", false)]);
        assert_eq!(plan(&svc, &m, &HashSet::new()).len(), 1);
        assert!(plan(&svc, &m, &set(&["svc"])).is_empty());
        let m = members(&["bob"], &[], &["dan"]);
        let all = users(&[("bob", true), ("dan", true)]);
        assert!(plan(&all, &m, &set(&["bob", "dan"])).is_empty());
    }

    #[test]
    fn a_virtual_device_assigned_now_counts_as_mfa_when_the_report_is_older() {
        let row = |user: &str, mfa_active: bool| report::ReportRow {
            user: user.into(),
            mfa_active,
            ..Default::default()
        };
        let rows = [row("old", true), row("new", false), row("none", false)];
        let assigned: BTreeSet<String> = set(&["new"]).into_iter().collect();
        assert_eq!(
            mfa_of(&rows, Some(&assigned)),
            users(&[("old", true), ("new", true), ("none", false)])
        );
        assert_eq!(
            mfa_of(&rows, None),
            users(&[("old", true), ("new", false), ("none", false)])
        );
    }

    #[test]
    fn lines_say_what_moved_where() {
        let g = Groups {
            onboarding: "NotYetLoginUsers".into(),
            enrolled: "MFARequired".into(),
            force: "ForceMFA".into(),
        };
        let c = Change {
            user: "bob".into(),
            mfa: true,
            add: vec![Role::Enrolled],
            remove: vec![Role::Onboarding],
        };
        assert_eq!(
            describe(&c, &g, false),
            "moved bob from NotYetLoginUsers to MFARequired (MFA active)"
        );
        let c = Change {
            user: "eve".into(),
            mfa: false,
            add: vec![Role::Force],
            remove: vec![],
        };
        assert_eq!(
            describe(&c, &g, false),
            "added eve to ForceMFA (no MFA device)"
        );
        assert_eq!(
            describe(&c, &g, true),
            "would add eve to ForceMFA (no MFA device)"
        );
    }
}
