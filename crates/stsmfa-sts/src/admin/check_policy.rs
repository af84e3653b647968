//! `admin check-policy`: what a policy (a file, a managed policy, or a user's
//! whole set) allows with a long-term key, a console sign-in without MFA and
//! with MFA, by IAM's policy simulator; then the findings, the statement
//! behind each and its fix. Read only.

use super::evaluate::{Decision, Policy};
use super::findings::{self, Finding};
use super::probes::{Subject, Table, WAYS, label, target_key};
use super::simulate::{self, Source};
use super::{Iam, authz, table};
use stsmfa_core::admin_cli::CheckPolicyArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;

/// The probes' user when the policy is not a user's own.
const PROBE_USER: &str = "probe-user";

pub fn check_policy(args: &CheckPolicyArgs) -> Result<u8, Fail> {
    // A file that cannot be read fails before any prompt.
    let file = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                fail!("cannot read {}: {e}", path.display())
                    .hint("give a policy document (JSON) file")
            })?;
            let doc = authz::document(&text).map_err(|e| {
                fail!("{} is not a policy document: {e}", path.display())
                    .hint("a policy is a JSON object with Version and Statement")
            })?;
            let name = path
                .file_name()
                .map_or("policy".into(), |n| n.to_string_lossy().into_owned());
            Some((name, text, doc))
        }
        None => None,
    };
    let iam = Iam::connect(&args.conn)?;
    let failed = |e: super::IamError| e.to_fail(&iam.profile);
    let account = iam.account().to_owned();
    let (subject, policies, source) = if let Some((name, _, doc)) = file {
        // Sent as compact JSON: the same policy, a smaller request.
        let text = doc.to_string();
        (
            subject(&account, PROBE_USER),
            vec![Policy { name, doc }],
            Source::Documents(vec![text]),
        )
    } else if let Some(arn) = &args.policy_arn {
        let (name, doc) = authz::managed_document(&iam, arn).map_err(failed)?;
        let text = doc.to_string();
        (
            subject(&account, PROBE_USER),
            vec![Policy { name, doc }],
            Source::Documents(vec![text]),
        )
    } else {
        let user = args.user.clone().unwrap_or_default();
        let all = authz::fetch(&iam, &|_| {}).map_err(failed)?;
        let found = all.into_iter().find(|u| u.user == user).ok_or_else(|| {
            fail!("no IAM user '{user}' in account {account}")
                .hint("list them with: aws iam list-users")
        })?;
        (
            subject(&account, &user),
            found.policies,
            Source::Principal(found.arn),
        )
    };
    let reading = Table::evaluate(&policies, &subject);
    let table = simulate::table(&iam, &source, &subject, &reading).map_err(failed)?;
    let mut found = findings::of_policies(&table, &policies);
    found.extend(findings::password_change(&table));
    if args.json {
        stsmfa_core::emit(&(json(&table, &subject, &found).to_string() + "\n"));
    } else {
        stsmfa_core::emit(&text(&table, &found));
    }
    Ok(0)
}

fn subject(account: &str, user: &str) -> Subject {
    Subject {
        account: account.to_owned(),
        user: user.to_owned(),
    }
}

fn json(table: &Table, subject: &Subject, found: &[Finding]) -> serde_json::Value {
    let probes: Vec<_> = table
        .rows
        .iter()
        .map(|(probe, cells)| {
            let mut row = serde_json::json!({
                "action": probe.action,
                "target": target_key(probe.target),
                "resource": subject.resource(probe.target),
            });
            for (way, cell) in WAYS.iter().zip(cells) {
                row[way.key()] = serde_json::to_value(cell.decision).unwrap_or_default();
            }
            row
        })
        .collect();
    serde_json::json!({
        "account": subject.account,
        "user": subject.user,
        "probes": probes,
        "findings": found,
    })
}

fn text(table: &Table, found: &[Finding]) -> String {
    let mut headers = vec!["action"];
    headers.extend(WAYS.iter().map(|w| w.title()));
    let rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|(probe, cells)| {
            let mut row = vec![label(probe)];
            row.extend(cells.iter().map(|c| c.decision.word().to_owned()));
            row
        })
        .collect();
    let mut out = table::render(&headers, &rows);
    out.push_str(&format!(
        "\n('{}': explicitly denied; '-': not allowed by any statement)\n",
        Decision::ExplicitDeny.word()
    ));
    if found.is_empty() {
        out.push_str("\nNo findings.\n");
    }
    for f in found {
        out.push_str(&format!("\n{}\n", f.finding));
        if let Some(s) = &f.statement {
            out.push_str(&format!("  statement: {s}\n"));
        }
        out.push_str(&format!("  fix: {}\n", f.fix));
    }
    out
}
