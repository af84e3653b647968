//! Policy: whether the long-term keys are denied without MFA, so the user
//! knows whether MFA is required at all. The probe is a read-only call that
//! AWS's MFA-enforcing policies deny without MFA (it lists account aliases).

use super::Aws;
use stsmfa_core::doctor_report::Check;
use stsmfa_core::sts::{Identity, StsError};

const PROBE: &str = "iam:ListAccountAliases";

pub fn check(aws: &dyn Aws, id: &Identity) -> Check {
    match aws.probe_without_mfa() {
        Ok(()) => Check::warn(
            "policy",
            format!("{} may call {PROBE} without MFA: its policy does not require MFA", id.arn),
        )
        .fix("stsmfa still works, but the keys alone are enough for AWS: attach a policy that denies all but MFA self-service without MFA (README, \"MFA-enforcing policy\")"),
        Err(StsError::Denied(msg)) if msg.contains("explicit deny") => Check::ok(
            "policy",
            format!("without MFA the long-term keys are denied {PROBE} (explicit deny): MFA is required"),
        ),
        Err(StsError::Denied(_)) => Check::ok(
            "policy",
            format!("without MFA the long-term keys are denied {PROBE}, but by no explicit deny: this probe cannot tell whether MFA is required"),
        ),
        Err(e) => Check::from_fail("policy", &e.to_fail(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeAws;
    use super::*;
    use stsmfa_core::doctor_report::Status;

    fn run(probe: Result<(), StsError>) -> Check {
        let aws = FakeAws {
            probe,
            ..FakeAws::default()
        };
        let id = aws.identity.clone().unwrap();
        check(&aws, &id)
    }

    #[test]
    fn an_explicit_deny_without_mfa_means_mfa_is_required() {
        let c = run(FakeAws::default().probe);
        assert_eq!(c.status, Status::Ok);
        assert!(c.message.contains("MFA is required"));
    }

    #[test]
    fn keys_allowed_without_mfa_warn_but_do_not_fail() {
        let c = run(Ok(()));
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("does not require MFA"));
        assert!(!c.fix.is_empty());
    }

    #[test]
    fn an_implicit_deny_cannot_tell() {
        let c = run(Err(StsError::Denied(
            "because no identity-based policy allows the iam:ListAccountAliases action".into(),
        )));
        assert_eq!(c.status, Status::Ok);
        assert!(c.message.contains("cannot tell"));
    }
}
