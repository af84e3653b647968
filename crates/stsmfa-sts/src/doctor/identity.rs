//! Identity and device: whose keys these are (GetCallerIdentity), and
//! whether the MFA device is listed for that user and enabled.

use super::Aws;
use stsmfa_core::doctor_report::Check;
use stsmfa_core::secret::mask_key_id;
use stsmfa_core::sts::Identity;

pub fn identity(aws: &dyn Aws, key_id: &str) -> (Check, Option<Identity>) {
    match aws.caller_identity() {
        Ok(id) => (
            Check::ok(
                "identity",
                format!(
                    "the long-term key {} is {} (account {})",
                    mask_key_id(key_id),
                    id.arn,
                    id.account
                ),
            ),
            Some(id),
        ),
        Err(e) => (Check::from_fail("identity", &e.to_fail(None)), None),
    }
}

/// The device line: `mfa_serial` among the user's enabled devices, or, with
/// none configured, the one device stsmfa would discover.
pub fn device(aws: &dyn Aws, id: &Identity, configured: Option<&str>, profile: &str) -> Check {
    let Some(user) = id.user_name() else {
        return Check::warn(
            "identity",
            format!("{} is not an IAM user: MFA devices not checked", id.arn),
        )
        .fix("the source profile needs an IAM user's long-term keys");
    };
    let enroll =
        format!("`stsmfa enroll {profile}` creates and enables a virtual MFA device for {user}");
    let devices = match aws.mfa_devices(user) {
        Ok(d) => d,
        Err(e) => return Check::from_fail("identity", &e.to_fail(configured)),
    };
    match (configured, devices.as_slice()) {
        (_, []) => Check::fail("identity", format!("{user} has no enabled MFA device"))
            .fix(enroll)
            .fix("or assign one in the IAM console, then set mfa_serial to its ARN"),
        (Some(serial), list) if list.iter().any(|d| d == serial) => Check::ok(
            "identity",
            format!("the MFA device {serial} is assigned to {user} and enabled"),
        ),
        (Some(serial), list) => Check::fail(
            "identity",
            format!(
                "mfa_serial {serial} is not an enabled MFA device of {user} (enabled: {})",
                list.join(", ")
            ),
        )
        .fix(format!(
            "set mfa_serial = {} in [profile {profile}]",
            list[0]
        )),
        (None, [only]) => Check::ok(
            "identity",
            format!("no mfa_serial: stsmfa discovers {user}'s only MFA device {only}"),
        ),
        (None, list) => Check::fail(
            "identity",
            format!(
                "no mfa_serial, and {user} has {} MFA devices: stsmfa cannot pick one",
                list.len()
            ),
        )
        .fix(format!(
            "set mfa_serial in [profile {profile}] to one of: {}",
            list.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeAws;
    use super::*;
    use stsmfa_core::doctor_report::Status;
    use stsmfa_core::sts::StsError;

    const DEV: &str = "arn:aws:iam::123456789012:mfa/alice";

    fn run(aws: &FakeAws, configured: Option<&str>) -> Check {
        let id = aws.identity.clone().unwrap();
        device(aws, &id, configured, "work")
    }

    #[test]
    fn identity_names_the_user_and_masks_the_key() {
        let (c, id) = identity(&FakeAws::default(), "AKIAABCDEFGHIJKLMNOP");
        assert_eq!(c.status, Status::Ok);
        assert!(id.is_some());
        assert!(c.message.contains("AKIA…MNOP") && c.message.contains("user/alice"));
        assert!(!c.message.contains("AKIAABCDEFGHIJKLMNOP"));
    }

    #[test]
    fn a_rejected_key_fails_with_the_fix() {
        let aws = FakeAws {
            identity: Err(StsError::InvalidKey(
                "The security token included in the request is invalid".into(),
            )),
            ..FakeAws::default()
        };
        let (c, id) = identity(&aws, "AKIAABCDEFGHIJKLMNOP");
        assert_eq!(c.status, Status::Fail);
        assert!(id.is_none());
        assert!(c.fix.iter().any(|f| f.contains("credentials")));
    }

    #[test]
    fn device_configured_and_enabled_is_ok() {
        assert_eq!(run(&FakeAws::default(), Some(DEV)).status, Status::Ok);
        assert_eq!(
            run(&FakeAws::default(), None).status,
            Status::Ok,
            "one device is discoverable"
        );
    }

    #[test]
    fn no_device_fails_with_enroll() {
        let aws = FakeAws {
            devices: vec![],
            ..FakeAws::default()
        };
        let c = run(&aws, None);
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("no enabled MFA device"));
        assert!(c.fix[0].contains("stsmfa enroll work"));
    }

    #[test]
    fn a_serial_not_enabled_or_two_devices_without_one_fail() {
        let c = run(
            &FakeAws::default(),
            Some("arn:aws:iam::123456789012:mfa/other"),
        );
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix[0].contains(DEV));
        let aws = FakeAws {
            devices: vec![DEV.into(), format!("{DEV}-2")],
            ..FakeAws::default()
        };
        assert_eq!(run(&aws, None).status, Status::Fail);
    }
}
