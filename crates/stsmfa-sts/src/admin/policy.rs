//! `admin policy`: the MFA-required policies, generated from one definition.
//!
//! Every variant starts from AWS's self-manage-MFA policy (the
//! `DenyAllExceptListedIfNoMFA` pattern) with the device resource narrowed
//! to `mfa/${aws:username}`, so users cannot touch each other's devices.
//! The variants differ only in what they add to it, which the unit tests pin.

use serde_json::{Value, json};
use stsmfa_core::admin_cli::{PolicyArgs, PolicyVariant};
use stsmfa_core::error::Fail;

/// The actions a user without MFA may call (if allowed): the device setup.
const SETUP_ACTIONS: [&str; 7] = [
    "iam:CreateVirtualMFADevice",
    "iam:EnableMFADevice",
    "iam:GetUser",
    "iam:ListMFADevices",
    "iam:ListVirtualMFADevices",
    "iam:ResyncMFADevice",
    "sts:GetSessionToken",
];

/// What a first sign-in needs before MFA: changing the temporary password.
const PASSWORD_ACTIONS: [&str; 2] = ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"];

pub const ALL: [PolicyVariant; 4] = [
    PolicyVariant::FirstLogin,
    PolicyVariant::Enrolled,
    PolicyVariant::ForceMfa,
    PolicyVariant::ConsoleOnly,
];

/// The variant's name on the command line.
pub fn variant_name(v: PolicyVariant) -> &'static str {
    match v {
        PolicyVariant::FirstLogin => "first-login",
        PolicyVariant::Enrolled => "enrolled",
        PolicyVariant::ForceMfa => "force-mfa",
        PolicyVariant::ConsoleOnly => "console-only",
    }
}

/// The managed policy's name as `admin setup` creates it.
pub fn managed_name(v: PolicyVariant) -> String {
    format!("stsmfa-{}", variant_name(v))
}

/// The policy document of a variant; `account` goes into resource ARNs
/// (`None`: any account, `*`).
pub fn document(variant: PolicyVariant, account: Option<&str>) -> Value {
    let acct = account.unwrap_or("*");
    let own_user = format!("arn:aws:iam::{acct}:user/${{aws:username}}");
    let own_device = format!("arn:aws:iam::{acct}:mfa/${{aws:username}}");
    let password = matches!(variant, PolicyVariant::FirstLogin | PolicyVariant::ForceMfa);

    let mut statements = vec![
        json!({
            "Sid": "AllowViewAccountInfo",
            "Effect": "Allow",
            "Action": "iam:ListVirtualMFADevices",
            "Resource": "*"
        }),
        json!({
            "Sid": "AllowManageOwnVirtualMFADevice",
            "Effect": "Allow",
            "Action": ["iam:CreateVirtualMFADevice"],
            "Resource": own_device
        }),
        json!({
            "Sid": "AllowManageOwnUserMFA",
            "Effect": "Allow",
            "Action": [
                "iam:EnableMFADevice",
                "iam:GetUser",
                "iam:ListMFADevices",
                "iam:ResyncMFADevice"
            ],
            "Resource": own_user
        }),
    ];
    // A confined user only sets a device up; taking one off needs MFA and
    // is for enrolled users.
    if variant != PolicyVariant::ForceMfa {
        statements.push(json!({
            "Sid": "AllowDeactivateOwnMFAOnlyWithMFA",
            "Effect": "Allow",
            "Action": ["iam:DeactivateMFADevice"],
            "Resource": [own_device, own_user],
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        }));
    }
    if password {
        statements.push(json!({
            "Sid": "AllowChangeOwnPassword",
            "Effect": "Allow",
            "Action": ["iam:ChangePassword"],
            "Resource": own_user
        }));
        statements.push(json!({
            "Sid": "AllowReadPasswordPolicy",
            "Effect": "Allow",
            "Action": ["iam:GetAccountPasswordPolicy"],
            "Resource": "*"
        }));
    }

    let mut not_action: Vec<&str> = SETUP_ACTIONS.to_vec();
    if password {
        not_action.extend(PASSWORD_ACTIONS);
        not_action.sort_unstable();
    }
    // BoolIfExists also matches long-term keys (no MFA key in their
    // requests); plain Bool matches only sessions without MFA.
    let operator = if variant == PolicyVariant::ConsoleOnly {
        "Bool"
    } else {
        "BoolIfExists"
    };
    let sid = if variant == PolicyVariant::ForceMfa {
        "DenyAllExceptMFASetupIfNoMFA"
    } else {
        "DenyAllExceptListedIfNoMFA"
    };
    statements.push(json!({
        "Sid": sid,
        "Effect": "Deny",
        "NotAction": not_action,
        "Resource": "*",
        "Condition": {operator: {"aws:MultiFactorAuthPresent": "false"}}
    }));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The document as `admin policy` prints it and `admin setup` uploads it.
pub fn pretty(doc: &Value) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default() + "\n"
}

pub const CONSOLE_ONLY_WARNING: &str = "the console-only variant uses Bool, not BoolIfExists: \
     requests signed with long-term access keys carry no MFA key, so they bypass MFA entirely";

pub fn print(args: &PolicyArgs) -> Result<u8, Fail> {
    if let Some(acct) = &args.account
        && (acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(
            Fail::usage(format!("--account {acct}: an AWS account ID is 12 digits"))
                .hint("aws sts get-caller-identity --query Account shows yours"),
        );
    }
    let variants: Vec<PolicyVariant> = match args.variant {
        Some(v) => vec![v],
        None => ALL.to_vec(),
    };
    for v in variants {
        if args.variant.is_none() {
            stsmfa_core::note(&format!(
                "policy {} (admin setup names it {}):",
                variant_name(v),
                managed_name(v)
            ));
        }
        if v == PolicyVariant::ConsoleOnly {
            stsmfa_core::warn(CONSOLE_ONLY_WARNING);
        }
        stsmfa_core::emit(&pretty(&document(v, args.account.as_deref())));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement<'a>(doc: &'a Value, sid: &str) -> Option<&'a Value> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
    }

    fn deny(doc: &Value) -> &Value {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Effect"] == "Deny")
            .expect("a deny statement")
    }

    fn not_actions(doc: &Value) -> Vec<String> {
        deny(doc)["NotAction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    fn allowed(doc: &Value, action: &str) -> Vec<String> {
        let mut resources = Vec::new();
        for s in doc["Statement"].as_array().unwrap() {
            if s["Effect"] != "Allow" {
                continue;
            }
            let actions = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
                _ => vec![],
            };
            if actions.iter().any(|a| a == action) {
                match &s["Resource"] {
                    Value::String(r) => resources.push(r.clone()),
                    Value::Array(r) => {
                        resources.extend(r.iter().map(|x| x.as_str().unwrap().to_owned()))
                    }
                    _ => {}
                }
            }
        }
        resources
    }

    #[test]
    fn enrolled_is_the_aws_pattern_with_the_device_named_after_the_user() {
        let doc = document(PolicyVariant::Enrolled, None);
        assert_eq!(deny(&doc)["Sid"], "DenyAllExceptListedIfNoMFA");
        assert_eq!(
            deny(&doc)["Condition"],
            json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})
        );
        assert_eq!(not_actions(&doc), SETUP_ACTIONS.to_vec());
        assert_eq!(
            allowed(&doc, "iam:CreateVirtualMFADevice"),
            ["arn:aws:iam::*:mfa/${aws:username}"]
        );
        assert!(!pretty(&doc).contains("mfa/*"));
        assert_eq!(
            allowed(&doc, "iam:EnableMFADevice"),
            ["arn:aws:iam::*:user/${aws:username}"]
        );
        assert!(allowed(&doc, "iam:ChangePassword").is_empty());
        let deactivate = statement(&doc, "AllowDeactivateOwnMFAOnlyWithMFA").unwrap();
        assert_eq!(
            deactivate["Condition"],
            json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}})
        );
    }

    #[test]
    fn first_login_adds_the_password_change_to_the_not_action_list_and_allows_it() {
        let enrolled = not_actions(&document(PolicyVariant::Enrolled, None));
        let doc = document(PolicyVariant::FirstLogin, None);
        let first = not_actions(&doc);
        let added: Vec<&String> = first.iter().filter(|a| !enrolled.contains(a)).collect();
        assert_eq!(
            added,
            ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"]
        );
        assert_eq!(first.len(), enrolled.len() + 2);
        assert_eq!(
            allowed(&doc, "iam:ChangePassword"),
            ["arn:aws:iam::*:user/${aws:username}"]
        );
        assert_eq!(allowed(&doc, "iam:GetAccountPasswordPolicy"), ["*"]);
        assert!(statement(&doc, "AllowDeactivateOwnMFAOnlyWithMFA").is_some());
    }

    #[test]
    fn force_mfa_allows_only_setup_and_the_password_change() {
        let doc = document(PolicyVariant::ForceMfa, None);
        assert_eq!(deny(&doc)["Sid"], "DenyAllExceptMFASetupIfNoMFA");
        assert!(not_actions(&doc).contains(&"iam:ChangePassword".to_owned()));
        assert!(allowed(&doc, "iam:DeactivateMFADevice").is_empty());
        let mut all_allowed: Vec<String> = Vec::new();
        for s in doc["Statement"].as_array().unwrap() {
            if s["Effect"] == "Allow" {
                match &s["Action"] {
                    Value::String(a) => all_allowed.push(a.clone()),
                    Value::Array(a) => {
                        all_allowed.extend(a.iter().map(|x| x.as_str().unwrap().to_owned()))
                    }
                    _ => {}
                }
            }
        }
        let permitted: Vec<&str> = SETUP_ACTIONS
            .iter()
            .chain(&PASSWORD_ACTIONS)
            .copied()
            .collect();
        for a in &all_allowed {
            assert!(permitted.contains(&a.as_str()), "force-mfa allows {a}");
        }
    }

    #[test]
    fn console_only_uses_bool_and_nothing_else_changes() {
        let console = document(PolicyVariant::ConsoleOnly, None);
        let mut enrolled = document(PolicyVariant::Enrolled, None);
        assert_eq!(
            deny(&console)["Condition"],
            json!({"Bool": {"aws:MultiFactorAuthPresent": "false"}})
        );
        let last = enrolled["Statement"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap();
        last["Condition"] = json!({"Bool": {"aws:MultiFactorAuthPresent": "false"}});
        assert_eq!(console, enrolled);
    }

    #[test]
    fn the_account_goes_into_every_resource_arn() {
        for v in ALL {
            let text = pretty(&document(v, Some("123456789012")));
            assert!(!text.contains("iam::*:"), "{text}");
            assert!(text.contains("arn:aws:iam::123456789012:user/${aws:username}"));
            let doc: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(doc, document(v, Some("123456789012")));
        }
        assert!(
            pretty(&document(PolicyVariant::Enrolled, Some("123456789012")))
                .contains("arn:aws:iam::123456789012:mfa/${aws:username}")
        );
    }

    #[test]
    fn managed_names() {
        assert_eq!(
            managed_name(PolicyVariant::FirstLogin),
            "stsmfa-first-login"
        );
        assert_eq!(managed_name(PolicyVariant::ForceMfa), "stsmfa-force-mfa");
    }
}
