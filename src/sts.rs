//! STS and IAM behind one small trait. The SDK, its HTTPS client and the
//! async runtime are built only here, only on a cache miss.

use crate::credentials::{LongTermKeys, Session};
use crate::error::Fail;
use crate::fail;
use crate::secret::Secret;
use std::time::{Duration, SystemTime};

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
    /// The connection never opened, so the request cannot have reached AWS.
    #[error("cannot reach AWS: {0}")]
    Network(String),
    /// The connection failed after it opened: the request may have arrived.
    #[error("the connection to AWS broke off: {0}")]
    Interrupted(String),
    /// A call without an MFA code got no answer in time (seconds).
    #[error("AWS did not answer within {0} s")]
    Timeout(u64),
    /// A call with an MFA code got no answer in time (seconds): STS may have
    /// used the code all the same.
    #[error(
        "STS did not answer within {0} s; the code was sent and may have been used: wait for the next code"
    )]
    NoAnswer(u64),
    #[error("access denied: {0}")]
    Denied(String),
    #[error("AWS rejected the request: {0}")]
    Invalid(String),
    /// A 5xx answer with an AWS error code.
    #[error("AWS answered HTTP {status} ({code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// A reply the SDK could not parse; `detail` is the parser's account
    /// (its `Display` chain only, never the reply), shown with `-v`.
    #[error("the reply from AWS (HTTP {status}) cannot be parsed")]
    Unreadable { status: u16, detail: String },
    /// A parsed reply whose session no AWS would issue.
    #[error("STS returned an invalid session: {0}")]
    InvalidSession(String),
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

    /// Whether an MFA code sent with the failed call may have reached STS,
    /// and so be used up. Only a connection that never opened is sure not
    /// to have carried it; anything else counts as spent.
    pub fn code_may_be_spent(&self) -> bool {
        !matches!(self, StsError::Network(_))
    }

    /// More about the failure for `-v` (never a secret).
    pub fn detail(&self) -> Option<&str> {
        match self {
            StsError::Unreadable { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The user-facing line and its hints.
    pub fn to_fail(&self, serial: Option<&str>) -> Fail {
        let f = fail!("{self}");
        let network = "check the network, proxy (HTTPS_PROXY) and region; for a custom endpoint, AWS_ENDPOINT_URL_STS or endpoint_url";
        let elsewhere = "something other than AWS may be answering: check AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, endpoint_url and HTTPS_PROXY";
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
            StsError::Network(_) => f.hint(network),
            StsError::Interrupted(_) => f
                .hint(network)
                .hint("an MFA code sent with the request may have been used: wait for the next one"),
            StsError::Timeout(_) | StsError::NoAnswer(_) => f
                .hint(network)
                .hint("STSMFA_TIMEOUT sets how long to wait for AWS (default 30s)"),
            StsError::Denied(_) => f.hint("the IAM policy denies this call; ask an admin, or check that the right profile is used"),
            StsError::Invalid(_) => f.hint("check --duration (15m to 36h for IAM users) and mfa_serial"),
            StsError::Server { .. } => f.hint("AWS had a problem on its side: try again in a minute"),
            StsError::Unreadable { .. } => f
                .hint(elsewhere)
                .hint("run again with -v to see what the parser said"),
            StsError::InvalidSession(_) => f
                .hint(format!("AWS does not issue such sessions, so nothing was cached; {elsewhere}"))
                .hint("if only the expiry is wrong, check this machine's clock, --duration and STSMFA_MIN_TTL"),
            StsError::Other { .. } => f.hint("the code and message are AWS's own: look the code up in the AWS documentation of the call"),
        }
    }
}

/// Largest session token accepted. GetSessionToken's are a few hundred
/// bytes; a far bigger one is not AWS's and could not be cached anyway.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Largest access key ID or secret key accepted (AWS's are 20 and 40).
pub const MAX_KEY_BYTES: usize = 256;

/// Checks a session from STS before anything caches or prints it: a server
/// that is not AWS (a wrong endpoint, a broken proxy) can answer 200 with
/// anything. It must have more than `floor` left and at most `ceiling`.
pub fn check_session(
    session: &Session,
    now: SystemTime,
    floor: Duration,
    ceiling: Duration,
) -> Result<(), StsError> {
    let bad = |why: String| Err(StsError::InvalidSession(why));
    let fields = [
        (
            "access key ID",
            session.access_key_id.as_str(),
            MAX_KEY_BYTES,
        ),
        (
            "secret access key",
            session.secret_access_key.expose().as_str(),
            MAX_KEY_BYTES,
        ),
        (
            "session token",
            session.session_token.expose().as_str(),
            MAX_TOKEN_BYTES,
        ),
    ];
    // Never the values in the message: two of them are secrets.
    for (name, value, max) in fields {
        if value.is_empty() {
            return bad(format!("its {name} is empty"));
        }
        if value.len() > max {
            return bad(format!(
                "its {name} is {} bytes long (at most {max} expected)",
                value.len()
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return bad(format!(
                "its {name} holds characters other than printable ASCII"
            ));
        }
    }
    if !session.access_key_id.starts_with("ASIA") {
        return bad("its access key ID does not start with ASIA, as temporary keys do".into());
    }
    let now = crate::credentials::unix(now);
    if session.expiration == 0 {
        return bad("it has no expiry".into());
    }
    if session.expiration <= now {
        return bad(format!(
            "it expired already ({})",
            session.expiration_rfc3339()
        ));
    }
    let left = session.expiration - now;
    if left <= floor.as_secs() {
        return bad(format!(
            "it expires in {left} s ({}), within the {} s it must last at least",
            session.expiration_rfc3339(),
            floor.as_secs()
        ));
    }
    if left > ceiling.as_secs() {
        return bad(format!(
            "it expires in {left} s, later than the {} s it may last",
            ceiling.as_secs()
        ));
    }
    Ok(())
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
    timeout: Duration,
}

/// How long a TCP (or TLS, or proxy) connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
        // Calls without a code are safe to retry: several short attempts.
        let attempt = s.timeout.min(Duration::from_secs(10));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(s.timeout))
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
            timeout: s.timeout,
        })
    }

    /// Calls that carry an MFA code get exactly one attempt, which may take
    /// all of STSMFA_TIMEOUT: a retry would resend a code STS may already
    /// have used, and STS refuses a used code, so the session it issued for
    /// the first attempt would be lost.
    fn single_attempt(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(self.timeout))
            .operation_attempt_timeout(self.timeout)
            .operation_timeout(self.timeout)
            .build()
    }

    fn sts_with_code(&self) -> aws_sdk_sts::config::Builder {
        aws_sdk_sts::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(self.single_attempt())
    }

    fn iam_with_code(&self) -> aws_sdk_iam::config::Builder {
        aws_sdk_iam::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(self.single_attempt())
    }

    /// Whole seconds of STSMFA_TIMEOUT, rounded up, for messages.
    fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0)
    }

    /// Sorts an SDK error; `with_code` for calls that carried an MFA code.
    fn error<E>(&self, e: SdkError<E, HttpResponse>, with_code: bool) -> StsError
    where
        E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match sdk_error(e) {
            Sorted::Timeout if with_code => StsError::NoAnswer(self.timeout_secs()),
            Sorted::Timeout => StsError::Timeout(self.timeout_secs()),
            Sorted::Error(e) => e,
        }
    }
}

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::SdkError;

/// What `sdk_error` makes of an SDK error; a timeout's wording depends on
/// the call.
enum Sorted {
    Timeout,
    Error(StsError),
}

fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> Sorted
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sts::error::ProvideErrorMetadata;
    Sorted::Error(match &e {
        SdkError::TimeoutError(_) => return Sorted::Timeout,
        SdkError::DispatchFailure(d) => {
            if never_connected(&e) {
                // The innermost cause says it best ("Connection refused", "dns error: …").
                StsError::Network(innermost(&e))
            } else if d.is_timeout() {
                return Sorted::Timeout;
            } else {
                StsError::Interrupted(innermost(&e))
            }
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match s.err().code() {
                // No AWS error code: the reply was not AWS's XML (or not
                // the XML of this call).
                None => StsError::Unreadable {
                    status,
                    detail: if (200..300).contains(&status) {
                        chain(s.err())
                    } else {
                        format!("no AWS error code in the reply ({})", chain(s.err()))
                    },
                },
                code => match StsError::classify(code, s.err().message()) {
                    StsError::Other { code, message } if status >= 500 => StsError::Server {
                        status,
                        code,
                        message,
                    },
                    other => other,
                },
            }
        }
        SdkError::ResponseError(r) => StsError::Unreadable {
            status: r.raw().status().as_u16(),
            detail: chain(&e),
        },
        _ => match (e.code(), e.message()) {
            (None, None) => StsError::Other {
                code: "client".into(),
                message: chain(&e),
            },
            (c, m) => StsError::classify(c, m),
        },
    })
}

/// True when the connection (TCP, TLS, or a proxy's tunnel) never opened,
/// so the request cannot have left this machine. The HTTP client says so
/// with its `Connect` error kind.
fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<hyper_util::client::legacy::Error>() {
            return h.is_connect();
        }
        cause = c.source();
    }
    false
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    one_line(&cause.to_string())
}

/// An error and its causes on one line. `Display` texts only: the SDK's
/// `Debug` forms hold the raw reply, which may carry secrets.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    one_line(&parts.join(": "))
}

/// Control characters out, and at most 500 characters.
fn one_line(text: &str) -> String {
    const MAX: usize = 500;
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
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
            .map_err(|e| self.error(e, false))?;
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
            .customize()
            .config_override(self.iam_with_code())
            .send();
        self.rt
            .block_on(call)
            .map(|_| ())
            .map_err(|e| self.error(e, true))
    }

    pub fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), StsError> {
        let call = self
            .iam
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send();
        self.rt
            .block_on(call)
            .map(|_| ())
            .map_err(|e| self.error(e, false))
    }
}

impl Sts for AwsSts {
    fn caller_identity(&self) -> Result<Identity, StsError> {
        let out = self
            .rt
            .block_on(self.sts.get_caller_identity().send())
            .map_err(|e| self.error(e, false))?;
        Ok(Identity {
            arn: out.arn().unwrap_or_default().to_owned(),
            account: out.account().unwrap_or_default().to_owned(),
        })
    }

    fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, StsError> {
        let out = self
            .rt
            .block_on(self.iam.list_mfa_devices().user_name(user).send())
            .map_err(|e| self.error(e, false))?;
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
            .customize()
            .config_override(self.sts_with_code())
            .send();
        let out = self.rt.block_on(call).map_err(|e| self.error(e, true))?;
        let c = out
            .credentials()
            .ok_or_else(|| StsError::InvalidSession("the reply holds no credentials".into()))?;
        Ok(Session {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Secret::new(c.secret_access_key().to_owned()),
            session_token: Secret::new(c.session_token().to_owned()),
            // The SDK reads a missing expiry as 1970: 0 here, which
            // `check_session` refuses.
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
            StsError::Interrupted("m".into()),
            StsError::Timeout(30),
            StsError::NoAnswer(30),
            StsError::Server {
                status: 500,
                code: "c".into(),
                message: "m".into(),
            },
            StsError::Unreadable {
                status: 200,
                detail: "d".into(),
            },
            StsError::InvalidSession("m".into()),
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
