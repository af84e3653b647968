//! The real `Sts`: aws-sdk-sts and aws-sdk-iam on a current-thread tokio
//! runtime, built only on a cache miss (and for `enroll`).

use std::time::Duration;
use stsmfa_core::config::Role;
use stsmfa_core::credentials::{LongTermKeys, Session};
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;
use stsmfa_core::sts::{Caller, Identity, Sts, StsError};

/// Network and timeout settings for the SDK client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub profile: String,
    pub region: Option<String>,
    pub keys: LongTermKeys,
    /// Bound on one whole call, retries included.
    pub timeout: Duration,
}

impl ClientSettings {
    /// The client for a profile's settings and its long-term keys (from the
    /// key store or the AWS files: `keys::resolve`).
    pub fn new(s: &stsmfa_core::config::Settings, keys: LongTermKeys) -> ClientSettings {
        ClientSettings {
            profile: s.profile.clone(),
            region: s.region.clone(),
            keys,
            timeout: s.timeout,
        }
    }
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
        let creds = aws_credential_types::Credentials::new(
            &s.keys.access_key_id,
            s.keys.secret_access_key.expose(),
            None,
            None,
            "stsmfa-source-profile",
        );
        AwsSts::build(s, creds)
    }

    /// A client that calls with the MFA session `session` (for the IAM
    /// calls AWS's self-manage policy allows only with MFA: `rotate`).
    pub fn for_session(s: &ClientSettings, session: &Session) -> Result<AwsSts, Fail> {
        let creds = aws_credential_types::Credentials::new(
            &session.access_key_id,
            session.secret_access_key.expose(),
            Some(session.session_token.expose().clone()),
            None,
            "stsmfa-mfa-session",
        );
        AwsSts::build(s, creds)
    }

    fn build(s: &ClientSettings, creds: aws_credential_types::Credentials) -> Result<AwsSts, Fail> {
        use aws_config::{retry::RetryConfig, timeout::TimeoutConfig};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail!("cannot start the network runtime: {e}"))?;
        // Calls without a code are safe to retry: several short attempts.
        let attempt = s.timeout.min(Duration::from_secs(10));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(s.timeout))
            .operation_attempt_timeout(attempt)
            .operation_timeout(s.timeout)
            .build();
        let conf = sdk_config(
            &rt,
            s,
            creds,
            timeouts,
            RetryConfig::standard().with_max_attempts(4),
        );
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

/// The SDK configuration of a client: the profile's settings (endpoint_url
/// and the like), `creds`, and us-east-1 when no region is set anywhere
/// (STS and IAM answer there; without a region the SDK refuses to sign).
pub fn sdk_config(
    rt: &tokio::runtime::Runtime,
    s: &ClientSettings,
    creds: aws_credential_types::Credentials,
    timeouts: aws_config::timeout::TimeoutConfig,
    retry: aws_config::retry::RetryConfig,
) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .profile_name(&s.profile)
        .credentials_provider(creds)
        .timeout_config(timeouts)
        .retry_config(retry);
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let conf = rt.block_on(loader.load());
    if conf.region().is_none() {
        conf.into_builder()
            .region(Region::from_static("us-east-1"))
            .build()
    } else {
        conf
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

/// An SDK error of any AWS call (IAM's too) sorted as STS errors are:
/// network, timeouts (of `timeout_secs`), AWS error codes.
pub fn sort_sdk_error<E>(e: SdkError<E, HttpResponse>, timeout_secs: u64) -> StsError
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match sdk_error(e) {
        Sorted::Timeout => StsError::Timeout(timeout_secs),
        Sorted::Error(e) => e,
    }
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

/// IAM access-key calls used only by `rotate`.
impl AwsSts {
    /// The IDs of the user's access keys.
    pub fn list_access_keys(&self, user: &str) -> Result<Vec<String>, StsError> {
        let out = self
            .rt
            .block_on(self.iam.list_access_keys().user_name(user).send())
            .map_err(|e| self.error(e, false))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|m| m.access_key_id().map(str::to_owned))
            .collect())
    }

    /// A new access key. One attempt only: a retry after a lost answer would
    /// create a second key, which nobody would know.
    pub fn create_access_key(&self, user: &str) -> Result<LongTermKeys, StsError> {
        let call = self
            .iam
            .create_access_key()
            .user_name(user)
            .customize()
            .config_override(self.iam_with_code())
            .send();
        let out = self.rt.block_on(call).map_err(|e| self.error(e, true))?;
        let key = out.access_key().ok_or_else(|| StsError::Other {
            code: "EmptyResponse".into(),
            message: "CreateAccessKey returned no key".into(),
        })?;
        Ok(LongTermKeys {
            access_key_id: key.access_key_id().to_owned(),
            secret_access_key: Secret::new(key.secret_access_key().to_owned()),
        })
    }

    pub fn delete_access_key(&self, user: &str, id: &str) -> Result<(), StsError> {
        self.rt
            .block_on(
                self.iam
                    .delete_access_key()
                    .user_name(user)
                    .access_key_id(id)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| self.error(e, false))
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
        session_of(out.credentials())
    }

    fn assume_role(&self, caller: Caller<'_>, role: &Role) -> Result<Session, StsError> {
        let call = self
            .sts
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(&role.session_name)
            .set_external_id(role.external_id.clone())
            .set_source_identity(role.source_identity.clone())
            .duration_seconds(i32::try_from(role.duration.as_secs()).unwrap_or(i32::MAX));
        let (call, with_code) = match caller {
            // No code: the client's retries are safe. Only the credentials
            // change, for this call.
            Caller::Session(session) => {
                let creds = aws_credential_types::Credentials::new(
                    &session.access_key_id,
                    session.secret_access_key.expose(),
                    Some(session.session_token.expose().clone()),
                    None,
                    "stsmfa-session",
                );
                let over = aws_sdk_sts::config::Builder::default().credentials_provider(creds);
                (call.customize().config_override(over), false)
            }
            // A code: exactly one attempt, as for GetSessionToken.
            Caller::Mfa { serial, code } => (
                call.serial_number(serial)
                    .token_code(code)
                    .customize()
                    .config_override(self.sts_with_code()),
                true,
            ),
        };
        let out = self
            .rt
            .block_on(call.send())
            .map_err(|e| self.error(e, with_code))?;
        session_of(out.credentials())
    }
}

/// The session in an STS reply.
fn session_of(c: Option<&aws_sdk_sts::types::Credentials>) -> Result<Session, StsError> {
    let c = c.ok_or_else(|| StsError::InvalidSession("the reply holds no credentials".into()))?;
    Ok(Session {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: Secret::new(c.secret_access_key().to_owned()),
        session_token: Secret::new(c.session_token().to_owned()),
        // The SDK reads a missing expiry as 1970: 0 here, which
        // `check_session` refuses.
        expiration: u64::try_from(c.expiration().secs()).unwrap_or(0),
    })
}

/// Calls used only by `doctor`: no code, read-only.
impl AwsSts {
    /// The `Date` header of a GetCallerIdentity reply (error replies carry
    /// one too) and the local time it was read, for the clock check.
    pub fn sts_date(
        &self,
    ) -> Result<Option<(std::time::SystemTime, std::time::SystemTime)>, StsError> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let call = self
            .sts
            .get_caller_identity()
            .customize()
            .interceptor(DateHeader(seen.clone()))
            .send();
        let result = self.rt.block_on(call);
        let got = seen.lock().map(|mut s| s.take()).unwrap_or(None);
        match (got, result) {
            (Some(pair), _) => Ok(Some(pair)),
            (None, Ok(_)) => Ok(None),
            (None, Err(e)) => Err(self.error(e, false)),
        }
    }

    /// A harmless read-only call that MFA-enforcing policies deny without MFA.
    pub fn list_account_aliases(&self) -> Result<(), StsError> {
        self.rt
            .block_on(self.iam.list_account_aliases().send())
            .map(|_| ())
            .map_err(|e| self.error(e, false))
    }
}

/// The server's `Date` and the local time, read as the reply arrives.
type SeenDate =
    std::sync::Arc<std::sync::Mutex<Option<(std::time::SystemTime, std::time::SystemTime)>>>;

/// Reads the raw reply's `Date` header before the SDK parses it: the SDK
/// keeps no headers of a parsed GetCallerIdentity.
#[derive(Debug)]
struct DateHeader(SeenDate);

impl aws_sdk_sts::config::Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "stsmfa-doctor-date-header"
    }

    fn read_before_deserialization(
        &self,
        ctx: &aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_sts::config::RuntimeComponents,
        _: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let local = std::time::SystemTime::now();
        let server = ctx
            .response()
            .headers()
            .get("date")
            .and_then(|d| {
                aws_sdk_sts::primitives::DateTime::from_str(
                    d,
                    aws_sdk_sts::primitives::DateTimeFormat::HttpDate,
                )
                .ok()
            })
            .and_then(|d| std::time::SystemTime::try_from(d).ok());
        if let (Some(server), Ok(mut seen)) = (server, self.0.lock()) {
            *seen = Some((server, local));
        }
        Ok(())
    }
}
