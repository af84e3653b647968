//! The IAM credential report: one CSV for the whole account (password,
//! MFA, access keys of every user), so that `sync` and `audit` cost a few
//! calls however many users there are.

use super::{Iam, IamError};
use std::collections::BTreeSet;
use std::time::Duration;

/// One user's row. Dates are as IAM writes them (ISO 8601), `None` where
/// IAM writes `N/A`, `no_information` or `not_supported`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportRow {
    pub user: String,
    pub arn: String,
    pub created: Option<String>,
    pub password_enabled: bool,
    pub password_last_used: Option<String>,
    pub mfa_active: bool,
    pub keys: Vec<KeyColumns>,
}

/// One of the report's two access-key column groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyColumns {
    pub active: bool,
    pub last_rotated: Option<String>,
    pub last_used: Option<String>,
}

impl ReportRow {
    pub fn active_keys(&self) -> impl Iterator<Item = &KeyColumns> {
        self.keys.iter().filter(|k| k.active)
    }
}

/// The row for the account's root user, which is not an IAM user.
const ROOT: &str = "<root_account>";

/// Generates the report (or reuses IAM's if it is fresh: IAM decides) and
/// reads it. `sleep` waits between polls while IAM builds it.
pub fn fetch(iam: &Iam, sleep: &dyn Fn(Duration)) -> Result<Vec<ReportRow>, IamError> {
    for attempt in 0.. {
        let out = iam.call(
            "GenerateCredentialReport",
            iam.iam.generate_credential_report().send(),
        )?;
        let done = matches!(
            out.state(),
            Some(aws_sdk_iam::types::ReportStateType::Complete)
        );
        if done || attempt >= 60 {
            break;
        }
        sleep(Duration::from_millis(500));
    }
    let out = iam.call(
        "GetCredentialReport",
        iam.iam.get_credential_report().send(),
    )?;
    let bytes = out
        .content()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    parse(&bytes).map_err(|message| IamError::Unreadable {
        action: "GetCredentialReport",
        message,
    })
}

/// The users with an assigned virtual MFA device (ListVirtualMFADevices,
/// 1000 a page). The report is up to 4 hours old, so a device assigned since
/// counts at once; and a user whose MFA is active without one of these has a
/// hardware device.
pub fn virtual_device_users(iam: &Iam) -> Result<BTreeSet<String>, IamError> {
    let pages = iam.pages(
        "ListVirtualMFADevices",
        iam.iam
            .list_virtual_mfa_devices()
            .assignment_status(aws_sdk_iam::types::AssignmentStatusType::Assigned)
            .max_items(1000)
            .into_paginator()
            .send(),
    )?;
    Ok(pages
        .iter()
        .flat_map(|p| p.virtual_mfa_devices())
        .filter_map(|d| d.user().map(|u| u.user_name().to_owned()))
        .collect())
}

/// Parses the report's CSV; columns are found by name, so IAM may add some.
pub fn parse(csv_bytes: &[u8]) -> Result<Vec<ReportRow>, String> {
    let mut reader = csv::Reader::from_reader(csv_bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("the credential report is not CSV: {e}"))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let user_col = col("user").ok_or("the credential report has no user column")?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("the credential report is not CSV: {e}"))?;
        let get = |name: &str| col(name).and_then(|i| record.get(i)).unwrap_or("");
        let user = record.get(user_col).unwrap_or("").to_owned();
        if user == ROOT || user.is_empty() {
            continue;
        }
        let keys = (1..=2)
            .map(|n| KeyColumns {
                active: get(&format!("access_key_{n}_active")) == "true",
                last_rotated: date(get(&format!("access_key_{n}_last_rotated"))),
                last_used: date(get(&format!("access_key_{n}_last_used_date"))),
            })
            .collect();
        rows.push(ReportRow {
            arn: get("arn").to_owned(),
            created: date(get("user_creation_time")),
            password_enabled: get("password_enabled") == "true",
            password_last_used: date(get("password_last_used")),
            mfa_active: get("mfa_active") == "true",
            keys,
            user,
        });
    }
    Ok(rows)
}

fn date(value: &str) -> Option<String> {
    match value {
        "" | "N/A" | "no_information" | "not_supported" => None,
        v => Some(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2020-02-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
bob,arn:aws:iam::123456789012:user/bob,2021-03-04T05:06:07+00:00,true,no_information,2021-03-04T05:06:07+00:00,N/A,false,true,2021-03-04T05:06:08+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
svc,arn:aws:iam::123456789012:user/svc,2021-03-04T05:06:07+00:00,false,N/A,N/A,N/A,true,true,2020-01-01T00:00:00+00:00,2021-01-01T00:00:00+00:00,us-east-1,s3,true,2021-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A
";

    #[test]
    fn rows_are_read_by_column_name_without_the_root_row() {
        let rows = parse(REPORT.as_bytes()).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.user.as_str()).collect::<Vec<_>>(),
            ["bob", "svc"]
        );
        let bob = &rows[0];
        assert!(bob.password_enabled && !bob.mfa_active);
        assert_eq!(bob.password_last_used, None);
        assert_eq!(bob.active_keys().count(), 1);
        let svc = &rows[1];
        assert!(!svc.password_enabled && svc.mfa_active);
        assert_eq!(
            svc.keys[0].last_used.as_deref(),
            Some("2021-01-01T00:00:00+00:00")
        );
        assert_eq!(svc.active_keys().count(), 2);
    }

    #[test]
    fn a_report_that_is_not_csv_is_an_error() {
        assert!(parse(b"user,arn\n\"unterminated").is_err());
        assert!(parse(b"name,arn\nbob,x\n").is_err());
    }
}
