//! The real `Sts`: aws-sdk-sts and aws-sdk-iam on a current-thread tokio
//! runtime, built only on a cache miss (and for `enroll`).

use std::time::Duration;
use stsmfa_core::credentials::{LongTermKeys, Session};
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;
use stsmfa_core::sts::{Identity, Sts, StsError};

/// Network and timeout settings for the SDK client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub profile: String,
    pub region: Option<String>,
    pub keys: LongTermKeys,
    /// Bound on one whole call, retries included.
    pub timeout: Duration,
}

impl From<&stsmfa_core::config::Settings> for ClientSettings {
    fn from(s: &stsmfa_core::config::Settings) -> ClientSettings {
        ClientSettings {
            profile: s.profile.clone(),
            region: s.region.clone(),
            keys: s.keys.clone(),
            timeout: s.timeout,
        }
    }
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
