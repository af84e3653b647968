//! `admin audit`: one row per IAM user of each account: console password,
//! access keys, MFA device kind, the policies that require MFA, and what the
//! user's password and keys can still do without MFA (the findings). Read
//! only; the cost is a few calls per page of users (credential report,
//! ListVirtualMFADevices, GetAccountAuthorizationDetails), never per user.

use super::evaluate::Decision;
use super::findings::{self, ALL};
use super::probes::{ORDINARY, Subject, Table, Target, Way};
use super::report::{self, ReportRow};
use super::{Iam, IamError, authz, table};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use stsmfa_core::admin_cli::{AdminConn, AuditArgs, AuditFormat};
use stsmfa_core::error::Fail;

/// One user's row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserAudit {
    pub account: String,
    pub user: String,
    pub console: Console,
    pub keys: Vec<Key>,
    pub mfa: &'static str,
    pub mfa_policies: Vec<String>,
    pub findings: Vec<&'static str>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Console {
    pub password: bool,
    pub last_used: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Key {
    pub active: bool,
    pub age_days: Option<i64>,
    pub last_used: Option<String>,
}

pub fn audit(args: &AuditArgs) -> Result<u8, Fail> {
    let unknown: Vec<&String> = args
        .fail_on
        .iter()
        .filter(|f| !ALL.contains(&f.as_str()))
        .collect();
    if let Some(bad) = unknown.first() {
        return Err(Fail::usage(format!("--fail-on: unknown finding '{bad}'"))
            .hint(format!("the findings are: {}", ALL.join(", "))));
    }
    let profiles: Vec<Option<String>> = if args.profiles.is_empty() {
        vec![None]
    } else {
        args.profiles.iter().cloned().map(Some).collect()
    };
    // Sessions first, one after the other: a terminal takes one code at a time.
    let mut clients = Vec::new();
    for profile in profiles {
        let conn = AdminConn {
            profile,
            no_mfa: args.no_mfa,
            opts: args.opts.clone(),
        };
        clients.push(Iam::connect(&conn)?);
    }
    let now = now_days();
    let stale = i64::from(args.stale_days);
    // A bar per account on a terminal (big accounts take a while); none in a pipe or a log.
    let bars = std::io::stderr()
        .is_terminal()
        .then(indicatif::MultiProgress::new);
    let results: Vec<Result<Vec<UserAudit>, Fail>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|iam| {
                let bars = bars.as_ref();
                s.spawn(move || account(iam, now, stale, bars).map_err(|e| e.to_fail(&iam.profile)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(stsmfa_core::fail!("an audit thread failed")))
            })
            .collect()
    });
    let mut users = Vec::new();
    for r in results {
        users.extend(r?);
    }
    let summary = summary(&users);
    let out = match args.format {
        AuditFormat::Json => {
            serde_json::json!({"users": users, "summary": summary}).to_string() + "\n"
        }
        AuditFormat::Csv => csv(&users),
        AuditFormat::Table => text(&users, &summary),
    };
    stsmfa_core::emit(&out);
    let hit = users.iter().any(|u| {
        u.findings
            .iter()
            .any(|f| args.fail_on.iter().any(|w| w == f))
    });
    Ok(if hit { 3 } else { 0 })
}

fn summary(users: &[UserAudit]) -> BTreeMap<&'static str, usize> {
    ALL.iter()
        .map(|f| (*f, users.iter().filter(|u| u.findings.contains(f)).count()))
        .collect()
}

/// One account's users.
fn account(
    iam: &Iam,
    now: i64,
    stale: i64,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<Vec<UserAudit>, IamError> {
    let id = iam.account().to_owned();
    let rows = report::fetch(iam, &std::thread::sleep)?;
    let bar = bars.map(|m| {
        let bar = m.add(indicatif::ProgressBar::new(rows.len() as u64));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} users")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("stsmfa: {}", iam.profile));
        bar
    });
    let show = |n: usize| {
        if let Some(bar) = &bar {
            bar.set_position(n as u64);
        }
    };
    let virtual_users = report::virtual_device_users(iam)?;
    let policies: BTreeMap<String, authz::UserPolicies> = authz::fetch(iam, &show)?
        .into_iter()
        .map(|u| (u.user.clone(), u))
        .collect();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(rows
        .iter()
        .map(|row| {
            let set = policies
                .get(&row.user)
                .map(|u| u.policies.as_slice())
                .unwrap_or_default();
            user(&id, row, set, virtual_users.contains(&row.user), now, stale)
        })
        .collect())
}

fn user(
    account: &str,
    row: &ReportRow,
    policies: &[super::evaluate::Policy],
    has_virtual: bool,
    now: i64,
    stale: i64,
) -> UserAudit {
    let subject = Subject {
        account: account.to_owned(),
        user: row.user.clone(),
    };
    let table = Table::evaluate(policies, &subject);
    let keys: Vec<Key> = row
        .keys
        .iter()
        .filter(|k| k.active || k.last_rotated.is_some())
        .map(|k| Key {
            active: k.active,
            age_days: k.last_rotated.as_deref().and_then(days).map(|d| now - d),
            last_used: k.last_used.clone(),
        })
        .collect();
    let active_keys = row.active_keys().next().is_some();
    let mut found = BTreeSet::new();
    if row.password_enabled && !row.mfa_active {
        found.insert(findings::CONSOLE_WITHOUT_MFA);
    }
    if active_keys && !row.mfa_active {
        found.insert(findings::KEYS_WITHOUT_MFA);
    }
    if keys
        .iter()
        .any(|k| k.active && k.age_days.is_some_and(|d| d > stale))
    {
        found.insert(findings::STALE_KEY);
    }
    for f in findings::of_policies(&table, policies) {
        found.insert(f.finding);
    }
    UserAudit {
        account: account.to_owned(),
        user: row.user.clone(),
        console: Console {
            password: row.password_enabled,
            last_used: row.password_last_used.clone(),
        },
        keys,
        mfa: match (row.mfa_active, has_virtual) {
            (false, _) => "none",
            (true, true) => "virtual",
            (true, false) => "hardware",
        },
        mfa_policies: mfa_policies(&table),
        findings: ALL.iter().filter(|f| found.contains(*f)).copied().collect(),
    }
}

/// The policies whose Deny stops ordinary work without MFA.
fn mfa_policies(table: &Table) -> Vec<String> {
    let mut out = BTreeSet::new();
    for action in ORDINARY {
        for way in [Way::ConsoleNoMfa, Way::LongTermKey] {
            if let Some(o) = table.get(action, Target::Any, way)
                && o.decision == Decision::ExplicitDeny
            {
                out.extend(o.matched.iter().map(|r| r.policy.clone()));
            }
        }
    }
    out.into_iter().collect()
}

/// Users with an assigned virtual device (a user with MFA and none has a
/// hardware device: no per-user ListMFADevices needed).
fn now_days() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

/// Days since 1970-01-01 of an ISO 8601 date (`2021-03-04T05:06:07+00:00`).
fn days(text: &str) -> Option<i64> {
    let y: i64 = text.get(0..4)?.parse().ok()?;
    let m: i64 = text.get(5..7)?.parse().ok()?;
    let d: i64 = text.get(8..10)?.parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn console_cell(u: &UserAudit) -> String {
    match (&u.console.password, &u.console.last_used) {
        (false, _) => "-".into(),
        (true, Some(d)) => format!("password (last {})", d.get(..10).unwrap_or(d)),
        (true, None) => "password (never used)".into(),
    }
}

fn keys_cell(u: &UserAudit) -> String {
    let active: Vec<String> = u
        .keys
        .iter()
        .filter(|k| k.active)
        .map(|k| {
            let age = k.age_days.map_or("?".into(), |d| format!("{d}d"));
            let used = k.last_used.as_deref().map_or("never used".into(), |d| {
                format!("used {}", d.get(..10).unwrap_or(d))
            });
            format!("{age} {used}")
        })
        .collect();
    if active.is_empty() {
        "-".into()
    } else {
        active.join("; ")
    }
}

fn or_dash(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

fn text(users: &[UserAudit], summary: &BTreeMap<&'static str, usize>) -> String {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.account.clone(),
                u.user.clone(),
                console_cell(u),
                keys_cell(u),
                u.mfa.to_owned(),
                or_dash(&u.mfa_policies),
                or_dash(&u.findings.iter().map(|f| f.to_string()).collect::<Vec<_>>()),
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "account",
            "user",
            "console",
            "keys",
            "mfa",
            "mfa policies",
            "findings",
        ],
        &rows,
    );
    out.push_str(&format!("\n{} users\n", users.len()));
    for (f, n) in summary {
        out.push_str(&format!("{f}: {n}\n"));
    }
    out
}

fn csv(users: &[UserAudit]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "account",
        "user",
        "password",
        "password_last_used",
        "active_keys",
        "oldest_key_days",
        "mfa",
        "mfa_policies",
        "findings",
    ]);
    for u in users {
        let active: Vec<&Key> = u.keys.iter().filter(|k| k.active).collect();
        let oldest = active.iter().filter_map(|k| k.age_days).max();
        let _ = w.write_record([
            u.account.clone(),
            u.user.clone(),
            u.console.password.to_string(),
            u.console.last_used.clone().unwrap_or_default(),
            active.len().to_string(),
            oldest.map(|d| d.to_string()).unwrap_or_default(),
            u.mfa.to_owned(),
            u.mfa_policies.join(";"),
            u.findings.join(";"),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_days() {
        assert_eq!(super::days("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(super::days("2021-03-04T05:06:07+00:00"), Some(18690));
        assert_eq!(super::days("N/A"), None);
    }
}
