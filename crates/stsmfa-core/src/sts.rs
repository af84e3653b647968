//! STS and IAM behind one small trait. The SDK, its HTTPS client and the
//! async runtime are built only here, only on a cache miss.

use crate::credentials::{LongTermKeys, Session};
use crate::error::Fail;
use crate::fail;
use crate::secret::Secret;
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

/// Network and timeout settings for the SDK client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub profile: String,
    pub region: Option<String>,
    pub keys: LongTermKeys,
    /// Bound on one whole call, retries included.
    pub timeout: Duration,
}

/// The real thing: aws-sdk-sts and aws-sdk-iam on a current-thread runtime.
pub struct AwsSts {
    rt: tokio::runtime::Runtime,
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
}

impl AwsSts {
    pub fn new(s: &ClientSettings) -> Result<AwsSts, Fail> {
        use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail!("cannot start the network runtime: {e}"))?;
        let creds = aws_credential_types::Credentials::new(
            &s.keys.access_key_id,
            s.keys.secret_access_key.expose(),
            None,
            None,
            "stsmfa-source-profile",
        );
        let attempt = s.timeout.min(Duration::from_secs(10));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5).min(s.timeout))
            .operation_attempt_timeout(attempt)
            .operation_timeout(s.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .profile_name(&s.profile)
            .credentials_provider(creds)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(4));
        if let Some(r) = &s.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let conf = rt.block_on(loader.load());
        // GetSessionToken works from any region; without one the SDK refuses to
        // sign, so fall back to the global partition's home.
        let conf = if conf.region().is_none() {
            conf.into_builder()
                .region(Region::from_static("us-east-1"))
                .build()
        } else {
            conf
        };
        Ok(AwsSts {
            sts: aws_sdk_sts::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            rt,
        })
    }
}

fn sdk_error<E, R>(e: aws_sdk_sts::error::SdkError<E, R>) -> StsError
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    match &e {
        SdkError::TimeoutError(_) => {
            StsError::Network("no answer in time (STSMFA_TIMEOUT sets the limit)".into())
        }
        SdkError::DispatchFailure(_) => {
            // The innermost cause says it best ("Connection refused", "dns error: …").
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            StsError::Network(cause.to_string().replace('\n', " "))
        }
        SdkError::ServiceError(s) => StsError::classify(s.err().code(), s.err().message()),
        _ => match (e.code(), e.message()) {
            (None, None) => StsError::Other {
                code: "client".into(),
                message: DisplayErrorContext(&e).to_string().replace('\n', " "),
            },
            (c, m) => StsError::classify(c, m),
        },
    }
}

/// IAM calls used only by `enroll`.
impl AwsSts {
    /// Creates `mfa/USER`; returns its serial and base32 seed.
    pub fn create_virtual_mfa_device(
        &self,
        user: &str,
    ) -> Result<(String, Secret<String>), StsError> {
        let out = self
            .rt
            .block_on(
                self.iam
                    .create_virtual_mfa_device()
                    .virtual_mfa_device_name(user)
                    .send(),
            )
            .map_err(sdk_error)?;
        let dev = out.virtual_mfa_device().ok_or_else(|| StsError::Other {
            code: "EmptyResponse".into(),
            message: "CreateVirtualMFADevice returned no device".into(),
        })?;
        let seed = dev
            .base32_string_seed()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        Ok((dev.serial_number().to_owned(), Secret::new(seed)))
    }

    pub fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), StsError> {
        let call = self
            .iam
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(code1)
            .authentication_code2(code2)
            .send();
        self.rt.block_on(call).map(|_| ()).map_err(sdk_error)
    }

    pub fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), StsError> {
        let call = self
            .iam
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send();
        self.rt.block_on(call).map(|_| ()).map_err(sdk_error)
    }
}

impl Sts for AwsSts {
    fn caller_identity(&self) -> Result<Identity, StsError> {
        let out = self
            .rt
            .block_on(self.sts.get_caller_identity().send())
            .map_err(sdk_error)?;
        Ok(Identity {
            arn: out.arn().unwrap_or_default().to_owned(),
            account: out.account().unwrap_or_default().to_owned(),
        })
    }

    fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, StsError> {
        let out = self
            .rt
            .block_on(self.iam.list_mfa_devices().user_name(user).send())
            .map_err(sdk_error)?;
        Ok(out
            .mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_owned())
            .collect())
    }

    fn get_session_token(
        &self,
        serial: &str,
        code: &str,
        duration: Duration,
    ) -> Result<Session, StsError> {
        let call = self
            .sts
            .get_session_token()
            .serial_number(serial)
            .token_code(code)
            .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX))
            .send();
        let out = self.rt.block_on(call).map_err(sdk_error)?;
        let c = out.credentials().ok_or_else(|| StsError::Other {
            code: "EmptyResponse".into(),
            message: "GetSessionToken returned no credentials".into(),
        })?;
        Ok(Session {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Secret::new(c.secret_access_key().to_owned()),
            session_token: Secret::new(c.session_token().to_owned()),
            expiration: u64::try_from(c.expiration().secs()).unwrap_or(0),
        })
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
