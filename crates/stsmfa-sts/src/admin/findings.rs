//! What a probe table says about a policy set: the findings, the statement
//! that causes each, and the fix. The same rules serve `audit` (tables from
//! stsmfa's own reading of each user's policies) and `check-policy` (tables
//! from IAM's simulator).

use super::evaluate::{Decision, Policy, StatementRef, statements, strings};
use super::probes::{ORDINARY, Table, Target, Way};
use serde_json::Value;

pub const CONSOLE_WITHOUT_MFA: &str = "console-without-mfa";
pub const KEYS_WITHOUT_MFA: &str = "keys-without-mfa";
pub const KEYS_BYPASS_MFA: &str = "keys-bypass-mfa";
pub const MFA_NOT_REQUIRED: &str = "mfa-not-required";
pub const CAN_CREATE_KEYS: &str = "can-create-keys-without-mfa";
pub const DEVICE_NAME: &str = "device-name-not-restricted";
pub const STALE_KEY: &str = "stale-key";
/// check-policy only: a new user cannot set their first password.
pub const PASSWORD_CHANGE: &str = "password-change-needs-mfa";

/// Every audit finding, in report order.
pub const ALL: &[&str] = &[
    CONSOLE_WITHOUT_MFA,
    KEYS_WITHOUT_MFA,
    KEYS_BYPASS_MFA,
    MFA_NOT_REQUIRED,
    CAN_CREATE_KEYS,
    DEVICE_NAME,
    STALE_KEY,
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub finding: &'static str,
    /// The statement that causes it (`Sid in POLICY`), if one does.
    pub statement: Option<String>,
    pub fix: String,
}

fn first(refs: &[StatementRef]) -> Option<String> {
    refs.first().map(ToString::to_string)
}

/// The policy findings of one table over `policies` (the documents it was
/// made from: they name the statements).
pub fn of_policies(table: &Table, policies: &[Policy]) -> Vec<Finding> {
    let mut out = Vec::new();
    let denied = |way| {
        ORDINARY
            .iter()
            .find(|a| table.decision(a, Target::Any, way) == Decision::ExplicitDeny)
    };
    match (denied(Way::ConsoleNoMfa), denied(Way::LongTermKey)) {
        (None, None) => out.push(Finding {
            finding: MFA_NOT_REQUIRED,
            statement: None,
            fix: "add a Deny of everything but the MFA self-service actions (NotAction) under BoolIfExists aws:MultiFactorAuthPresent false (stsmfa admin policy prints one); an Allow that asks for MFA is undone by any other Allow".into(),
        }),
        (Some(action), None) => {
            let deny = table
                .get(action, Target::Any, Way::ConsoleNoMfa)
                .and_then(|o| first(&o.matched));
            out.push(Finding {
                finding: KEYS_BYPASS_MFA,
                statement: deny.clone(),
                fix: format!(
                    "use BoolIfExists instead of Bool in {}: requests signed with a long-term key carry no aws:MultiFactorAuthPresent, so Bool never matches them",
                    deny.as_deref().unwrap_or("the Deny")
                ),
            });
        }
        _ => {}
    }

    let no_mfa_allow = [Way::LongTermKey, Way::ConsoleNoMfa]
        .into_iter()
        .find_map(|w| {
            table
                .get("iam:CreateAccessKey", Target::OwnUser, w)
                .filter(|o| o.decision == Decision::Allowed)
        });
    if let Some(outcome) = no_mfa_allow {
        let exempting = exempting_deny(policies, "iam:CreateAccessKey");
        let fix = match &exempting {
            Some(deny) => format!(
                "{deny} exempts iam:CreateAccessKey from the MFA Deny (its NotAction covers it): list only the MFA self-service actions there, not iam:* or iam:CreateAccessKey"
            ),
            None => "deny iam:CreateAccessKey without MFA (a Deny under BoolIfExists aws:MultiFactorAuthPresent false), or allow it only with MFA".into(),
        };
        out.push(Finding {
            finding: CAN_CREATE_KEYS,
            statement: exempting.or_else(|| first(&outcome.matched)),
            fix,
        });
    }

    let device = ["iam:DeleteVirtualMFADevice", "iam:CreateVirtualMFADevice"]
        .into_iter()
        .find_map(|a| {
            let o = table.get(a, Target::OtherDevice, Way::WithMfa)?;
            if o.decision != Decision::Allowed {
                return None;
            }
            // A `*` resource is an admin's reach, not a device-name mistake.
            let named = o.matched.iter().find(|r| names_mfa_wildcard(policies, r))?;
            Some((a, named.clone()))
        });
    if let Some((action, statement)) = device {
        out.push(Finding {
            finding: DEVICE_NAME,
            statement: Some(statement.to_string()),
            fix: format!(
                "use Resource arn:aws:iam::*:mfa/${{aws:username}} in {statement} instead of mfa/*: as it is, {action} reaches other users' devices"
            ),
        });
    }
    out
}

/// check-policy's extra: the Deny blocks a new user's first password change.
pub fn password_change(table: &Table) -> Option<Finding> {
    let o = table.get("iam:ChangePassword", Target::OwnUser, Way::ConsoleNoMfa)?;
    (o.decision == Decision::ExplicitDeny).then(|| {
        let deny = first(&o.matched);
        Finding {
            finding: PASSWORD_CHANGE,
            fix: format!(
                "add iam:ChangePassword and iam:GetAccountPasswordPolicy to the NotAction of {} (the first-login variant), or new users cannot set their first password",
                deny.as_deref().unwrap_or("the Deny")
            ),
            statement: deny,
        }
    })
}

/// A Deny that asks for MFA and whose NotAction lets `action` through.
fn exempting_deny(policies: &[Policy], action: &str) -> Option<String> {
    for policy in policies {
        for (i, st) in statements(&policy.doc).into_iter().enumerate() {
            let is_deny = st.get("Effect").and_then(Value::as_str) == Some("Deny");
            let mfa = st
                .get("Condition")
                .is_some_and(|c| c.to_string().contains("aws:MultiFactorAuth"));
            let exempts = strings(st.get("NotAction"))
                .iter()
                .any(|p| super::evaluate::glob(&p.to_lowercase(), &action.to_lowercase()));
            if is_deny && mfa && exempts {
                let name = super::evaluate::statement_name(st, i);
                return Some(format!("{name} in {}", policy.name));
            }
        }
    }
    None
}

/// Whether the statement's Resource names MFA devices with a wildcard.
fn names_mfa_wildcard(policies: &[Policy], r: &StatementRef) -> bool {
    policies
        .iter()
        .filter(|p| p.name == r.policy)
        .flat_map(|p| statements(&p.doc).into_iter().enumerate())
        .any(|(i, st)| {
            super::evaluate::statement_name(st, i) == r.statement
                && strings(st.get("Resource")).iter().any(|res| {
                    res.split_once(":mfa/")
                        .is_some_and(|(_, name)| name.contains('*') && !name.contains("${"))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::super::probes::Subject;
    use super::*;

    fn fixture(name: &str) -> Policy {
        let text = match name {
            "aws-sample" => include_str!("../../../../tests/fixtures/mfa-policies/aws-sample.json"),
            "first-login" => {
                include_str!("../../../../tests/fixtures/mfa-policies/first-login.json")
            }
            "bool-variant" => {
                include_str!("../../../../tests/fixtures/mfa-policies/bool-variant.json")
            }
            "self-manage" => include_str!(
                "../../../../tests/fixtures/mfa-policies/self-manage-boolifexists.json"
            ),
            "force-mfa" => {
                include_str!("../../../../tests/fixtures/mfa-policies/force-mfa-group.json")
            }
            _ => unreachable!(),
        };
        Policy {
            name: name.into(),
            doc: serde_json::from_str(text).unwrap(),
        }
    }

    fn found(names: &[&str]) -> Vec<Finding> {
        let policies: Vec<Policy> = names.iter().map(|n| fixture(n)).collect();
        let subject = Subject {
            account: "123456789012".into(),
            user: "bob".into(),
        };
        let table = Table::evaluate(&policies, &subject);
        let mut all = of_policies(&table, &policies);
        all.extend(password_change(&table));
        all
    }

    fn kinds(names: &[&str]) -> Vec<&'static str> {
        found(names).iter().map(|f| f.finding).collect()
    }

    #[test]
    fn aws_sample_blocks_the_password_change_and_leaves_device_names_open() {
        let f = found(&["aws-sample"]);
        assert_eq!(
            f.iter().map(|f| f.finding).collect::<Vec<_>>(),
            [DEVICE_NAME, PASSWORD_CHANGE]
        );
        assert_eq!(
            f[0].statement.as_deref(),
            Some("AllowManageOwnVirtualMFADevice in aws-sample")
        );
        assert!(f[0].fix.contains("mfa/${aws:username}"));
        assert_eq!(
            f[1].statement.as_deref(),
            Some("DenyAllExceptListedIfNoMFA in aws-sample")
        );
        assert!(f[1].fix.contains("iam:ChangePassword"));
    }

    #[test]
    fn first_login_variant_lets_the_password_change_through() {
        assert_eq!(kinds(&["first-login"]), [DEVICE_NAME]);
    }

    #[test]
    fn bool_variant_lets_keys_bypass_mfa() {
        let f = found(&["bool-variant"]);
        assert_eq!(f[0].finding, KEYS_BYPASS_MFA);
        assert_eq!(
            f[0].statement.as_deref(),
            Some("DoNotAllowAnythingOtherThanAboveUnlessMFAd in bool-variant")
        );
        assert!(f[0].fix.contains("BoolIfExists"));
        assert_eq!(kinds(&["bool-variant"]), [KEYS_BYPASS_MFA]);
    }

    #[test]
    fn not_action_iam_star_lets_a_password_mint_keys() {
        let f = found(&["self-manage"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].finding, CAN_CREATE_KEYS);
        assert_eq!(
            f[0].statement.as_deref(),
            Some("BlockAnyAccessOtherThanAboveUnlessSignedInWithMFA in self-manage")
        );
    }

    #[test]
    fn force_mfa_group_policy_has_no_finding() {
        assert_eq!(kinds(&["force-mfa"]), Vec::<&str>::new());
    }

    #[test]
    fn no_policy_is_mfa_not_required() {
        assert_eq!(kinds(&[]), [MFA_NOT_REQUIRED]);
    }
}
