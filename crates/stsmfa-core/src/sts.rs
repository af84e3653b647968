//! STS and IAM behind one small trait, and the errors they give, sorted by
//! what the user should do. The SDK adapter behind it lives in `stsmfa-sts`,
//! so that nothing here links the AWS SDK.

use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
use std::time::Duration;

/// Who the long-term keys belong to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub arn: String,
    pub account: String,
}

impl Identity {
    /// `arn:aws:iam::1234:user/path/alice` → `alice`; `None` for roots and roles.
    pub fn user_name(&self) -> Option<&str> {
        let rest = self.arn.split_once(":user/")?.1;
        Some(rest.rsplit('/').next().unwrap_or(rest))
    }
}

/// The calls stsmfa makes. A trait so session logic is testable without a server.
pub trait Sts {
    fn caller_identity(&self) -> Result<Identity, StsError>;
    fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, StsError>;
    fn get_session_token(
        &self,
        serial: &str,
        code: &str,
        duration: Duration,
    ) -> Result<Session, StsError>;
}

/// STS and IAM failures, sorted by what the user should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("STS rejected the MFA code: {0}")]
    WrongCode(String),
    #[error("STS could not validate the MFA device: {0}")]
    UnknownSerial(String),
    #[error("AWS does not accept the long-term access key: {0}")]
    InvalidKey(String),
    #[error("the long-term credentials are expired: {0}")]
    ExpiredKey(String),
    #[error("AWS is throttling requests: {0}")]
    Throttled(String),
    #[error("cannot reach AWS: {0}")]
    Network(String),
    #[error("access denied: {0}")]
    Denied(String),
    #[error("AWS rejected the request: {0}")]
    Invalid(String),
    #[error("AWS error {code}: {message}")]
    Other { code: String, message: String },
}

impl StsError {
    /// Sorts an AWS error by its code and message.
    pub fn classify(code: Option<&str>, message: Option<&str>) -> StsError {
        let msg = message.unwrap_or("").trim().to_owned();
        let lower = msg.to_ascii_lowercase();
        match code.unwrap_or("") {
            "AccessDenied" if lower.contains("one time pass code") => StsError::WrongCode(msg),
            "InvalidAuthenticationCode" => StsError::WrongCode(msg),
            "AccessDenied"
                if lower.contains("unable to validate mfa") || lower.contains("serial number") =>
            {
                StsError::UnknownSerial(msg)
            }
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                StsError::Denied(msg)
            }
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId" => StsError::InvalidKey(msg),
            "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
                StsError::ExpiredKey(msg)
            }
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => StsError::Throttled(msg),
            "ValidationError" | "InvalidParameterValue" | "InvalidParameterCombination" => {
                StsError::Invalid(msg)
            }
            "" if msg.is_empty() => StsError::Other {
                code: "unknown".into(),
                message: "no error details".into(),
            },
            other => StsError::Other {
                code: other.to_owned(),
                message: msg,
            },
        }
    }

    /// The user-facing line and its hints.
    pub fn to_fail(&self, serial: Option<&str>) -> Fail {
        let f = fail!("{self}");
        match self {
            StsError::WrongCode(_) => f
                .hint("check the code shown for this device in your authenticator app, and that this machine's clock is right")
                .hint("a code can be used only once: wait for the next one if you just used it"),
            StsError::UnknownSerial(_) => f.hint(format!(
                "check mfa_serial ({}): it must be the ARN of an MFA device assigned to this IAM user (`aws iam list-mfa-devices`)",
                serial.unwrap_or("not set")
            )),
            StsError::InvalidKey(_) => f
                .hint("check aws_access_key_id / aws_secret_access_key of the source profile in ~/.aws/credentials")
                .hint("if the key was rotated or deactivated, put the new key there"),
            StsError::ExpiredKey(_) => f.hint("the source profile needs an IAM user's long-term keys, not temporary ones"),
            StsError::Throttled(_) => f.hint("wait a minute and try again"),
            StsError::Network(_) => f
                .hint("check the network, proxy (HTTPS_PROXY) and region; for a custom endpoint, AWS_ENDPOINT_URL_STS or endpoint_url"),
            StsError::Denied(_) => f.hint("the IAM policy denies this call; ask an admin, or check that the right profile is used"),
            StsError::Invalid(_) => f.hint("check --duration (15m to 36h for IAM users) and mfa_serial"),
            StsError::Other { .. } => f.hint("run again with -v for details"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_aws_messages() {
        let c = |code, msg| StsError::classify(Some(code), Some(msg));
        assert!(matches!(
            c(
                "AccessDenied",
                "MultiFactorAuthentication failed with invalid MFA one time pass code."
            ),
            StsError::WrongCode(_)
        ));
        assert!(matches!(
            c(
                "AccessDenied",
                "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user."
            ),
            StsError::UnknownSerial(_)
        ));
        assert!(matches!(
            c(
                "InvalidClientTokenId",
                "The security token included in the request is invalid."
            ),
            StsError::InvalidKey(_)
        ));
        assert!(matches!(
            c("SignatureDoesNotMatch", "x"),
            StsError::InvalidKey(_)
        ));
        assert!(matches!(
            c(
                "ExpiredToken",
                "The security token included in the request is expired"
            ),
            StsError::ExpiredKey(_)
        ));
        assert!(matches!(
            c("Throttling", "Rate exceeded"),
            StsError::Throttled(_)
        ));
        assert!(matches!(
            c("ValidationError", "1 validation error"),
            StsError::Invalid(_)
        ));
        assert!(matches!(
            c("AccessDenied", "not authorized"),
            StsError::Denied(_)
        ));
        assert!(matches!(
            StsError::classify(None, None),
            StsError::Other { .. }
        ));
    }

    #[test]
    fn every_error_has_a_hint() {
        let all = [
            StsError::WrongCode("m".into()),
            StsError::UnknownSerial("m".into()),
            StsError::InvalidKey("m".into()),
            StsError::ExpiredKey("m".into()),
            StsError::Throttled("m".into()),
            StsError::Network("m".into()),
            StsError::Denied("m".into()),
            StsError::Invalid("m".into()),
            StsError::Other {
                code: "c".into(),
                message: "m".into(),
            },
        ];
        for e in all {
            let f = e.to_fail(Some("arn:aws:iam::1:mfa/a"));
            assert!(!f.hints.is_empty(), "{e:?}");
            assert!(!f.message.contains('\n'));
        }
    }

    #[test]
    fn user_names_from_arns() {
        let id = |arn: &str| Identity {
            arn: arn.into(),
            account: "1".into(),
        };
        assert_eq!(id("arn:aws:iam::1:user/alice").user_name(), Some("alice"));
        assert_eq!(
            id("arn:aws:iam::1:user/dev/team/bob").user_name(),
            Some("bob")
        );
        assert_eq!(id("arn:aws:iam::1:root").user_name(), None);
        assert_eq!(id("arn:aws:sts::1:assumed-role/r/s").user_name(), None);
    }
}
