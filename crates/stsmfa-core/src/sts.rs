//! STS and IAM behind one small trait, and the errors they give, sorted by
//! what the user should do. The SDK adapter behind it lives in `stsmfa-sts`,
//! so that nothing here links the AWS SDK.

use crate::config::Role;
use crate::credentials::Session;
use crate::error::Fail;
use crate::fail;
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
    /// AssumeRole of `role` for `caller`.
    fn assume_role(&self, caller: Caller<'_>, role: &Role) -> Result<Session, StsError>;
}

/// Whose credentials call AssumeRole.
#[derive(Clone, Copy)]
pub enum Caller<'a> {
    /// Session credentials: the source's MFA session, or for a chain the
    /// role session before. The role session inherits their MFA context,
    /// so no code is sent.
    Session(&'a Session),
    /// The long-term keys with `SerialNumber` and `TokenCode`, for role
    /// sessions longer than the 1-hour cap of the other way.
    Mfa { serial: &'a str, code: &'a str },
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
    /// STS is not activated in the region of the endpoint.
    #[error("STS is not activated in this region: {0}")]
    RegionDisabled(String),
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

/// The service a failed call went to: its hints name that service's
/// endpoint variable, and only an STS call can carry an MFA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sts,
    Iam,
}

impl Service {
    fn endpoint_var(self) -> &'static str {
        match self {
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
        }
    }
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
            "RegionDisabledException" => StsError::RegionDisabled(msg),
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

    /// The user-facing line and its hints, for an STS call.
    pub fn to_fail(&self, serial: Option<&str>) -> Fail {
        self.to_fail_from(Service::Sts, serial)
    }

    /// The user-facing line and its hints, for a call to `service`.
    pub fn to_fail_from(&self, service: Service, serial: Option<&str>) -> Fail {
        let f = fail!("{self}");
        let var = service.endpoint_var();
        let network = &format!(
            "check the network, proxy (HTTPS_PROXY) and region; for a custom endpoint, {var} or endpoint_url"
        );
        let elsewhere = &format!(
            "something other than AWS may be answering: check {var}, AWS_ENDPOINT_URL, endpoint_url and HTTPS_PROXY"
        );
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
            StsError::Interrupted(_) if service == Service::Sts => f
                .hint(network)
                .hint("an MFA code sent with the request may have been used: wait for the next one"),
            StsError::Interrupted(_) => f.hint(network),
            StsError::Timeout(_) | StsError::NoAnswer(_) => f
                .hint(network)
                .hint("STSMFA_TIMEOUT sets how long to wait for AWS (default 30s)"),
            StsError::Denied(_) => f.hint("the IAM policy denies this call; ask an admin, or check that the right profile is used"),
            StsError::Invalid(_) => f.hint("check --duration (15m to 36h for IAM users) and mfa_serial"),
            StsError::RegionDisabled(_) => f
                .hint("choose a region where STS is active (region in the profile, AWS_REGION or --region; us-east-1 always is)")
                .hint("or ask an admin to activate STS in this region (IAM account settings)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_service_s_endpoint_and_a_code_only_for_sts() {
        let e = StsError::Interrupted("connection reset".into());
        let sts = e.to_fail(None).hints.join("\n");
        assert!(
            sts.contains("AWS_ENDPOINT_URL_STS") && sts.contains("MFA code"),
            "{sts}"
        );
        let iam = e.to_fail_from(Service::Iam, None).hints.join("\n");
        assert!(iam.contains("AWS_ENDPOINT_URL_IAM"), "{iam}");
        assert!(!iam.contains("_STS") && !iam.contains("MFA code"), "{iam}");
    }

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
            StsError::RegionDisabled("m".into()),
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
