//! The admin commands' IAM client: whose credentials it calls with, and
//! IAM's errors translated into one line with a hint naming the IAM action
//! that is missing. Throttling is retried by the SDK (standard retries with
//! backoff); what still fails is reported as throttling.

use crate::aws::ClientSettings;
use std::future::Future;
use std::time::Duration;
use stsmfa_core::admin_cli::AdminConn;
use stsmfa_core::cli::ProfileArgs;
use stsmfa_core::commands;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::sts::Service;

/// An IAM client with the admin's credentials, on its own
/// current-thread runtime; calls block.
pub struct Iam {
    rt: tokio::runtime::Runtime,
    pub iam: aws_sdk_iam::Client,
    /// The profile it calls as, for messages.
    pub profile: String,
    /// Who the credentials belong to (GetCallerIdentity at connect).
    caller: Caller,
    timeout_secs: u64,
}

/// The account and ARN the admin's credentials belong to.
struct Caller {
    account: String,
    arn: String,
}

/// An IAM call's failure; the variants are the ones callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{action}: access denied: {message}")]
    Denied {
        action: &'static str,
        message: String,
    },
    #[error("{action}: not found: {message}")]
    NotFound {
        action: &'static str,
        message: String,
    },
    #[error("{action}: already exists: {message}")]
    Exists {
        action: &'static str,
        message: String,
    },
    #[error("{action}: IAM kept throttling the requests (retried with backoff): {message}")]
    Throttled {
        action: &'static str,
        message: String,
    },
    #[error("{action}: the password does not satisfy the account's password policy: {message}")]
    PasswordPolicy {
        action: &'static str,
        message: String,
    },
    #[error("{action}: an IAM limit is reached: {message}")]
    Limit {
        action: &'static str,
        message: String,
    },
    #[error("{action}: IAM's answer cannot be read: {message}")]
    Unreadable {
        action: &'static str,
        message: String,
    },
    #[error("{action}: {0}", .source)]
    Other {
        action: &'static str,
        source: stsmfa_core::sts::StsError,
    },
}

impl IamError {
    pub fn action(&self) -> &'static str {
        match self {
            IamError::Denied { action, .. }
            | IamError::NotFound { action, .. }
            | IamError::Exists { action, .. }
            | IamError::Throttled { action, .. }
            | IamError::PasswordPolicy { action, .. }
            | IamError::Limit { action, .. }
            | IamError::Unreadable { action, .. }
            | IamError::Other { action, .. } => action,
        }
    }

    /// The one-line error and its hints.
    pub fn to_fail(&self, profile: &str) -> Fail {
        let action = self.action();
        match self {
            IamError::Denied { .. } => fail!("{self}").hint(format!(
                "the admin profile '{profile}' needs iam:{action} (an IAM admin policy such as IAMFullAccess allows it)"
            )).hint("under an MFA-required policy, the admin's own calls need MFA: drop --no-mfa, or exempt the service user"),
            IamError::Throttled { .. } => fail!("{self}").hint("wait a minute and run it again; nothing half-done is left behind"),
            IamError::PasswordPolicy { .. } => fail!("{self}").hint("check the account's password policy (aws iam get-account-password-policy)"),
            IamError::Limit { .. } => fail!("{self}").hint("delete what is no longer needed (policy versions, access keys) and run it again"),
            IamError::NotFound { .. } | IamError::Exists { .. } => fail!("{self}"),
            IamError::Unreadable { .. } => fail!("{self}")
                .hint("something other than IAM may be answering: check AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL and endpoint_url"),
            IamError::Other { source, .. } => {
                // Who-am-I is the one STS call; every other action is IAM's.
                let service = match action {
                    "GetCallerIdentity" => Service::Sts,
                    _ => Service::Iam,
                };
                let mut f = source.to_fail_from(service, None);
                f.message = format!("{action}: {}", f.message);
                f
            }
        }
    }
}

impl Iam {
    /// The client for `conn`: the profile's MFA session through the session
    /// logic (one prompt, then the cache), or its long-term keys with `--no-mfa`.
    pub fn connect(conn: &AdminConn) -> Result<Iam, Fail> {
        let args = ProfileArgs {
            profile: conn.profile.clone(),
            opts: conn.opts.clone(),
        };
        let settings = commands::settings(&args)?;
        let profile = settings.served_profile().to_owned();
        let creds =
            if conn.no_mfa {
                if !settings.roles.is_empty() {
                    return Err(fail!(
                    "--no-mfa takes a profile with long-term keys; '{profile}' is a role profile"
                )
                .hint(format!("drop --no-mfa, or use --profile {}", settings.profile)));
                }
                let keys = crate::keys::resolve(&settings)?;
                aws_credential_types::Credentials::new(
                    &keys.access_key_id,
                    keys.secret_access_key.expose(),
                    None,
                    None,
                    "stsmfa-admin-keys",
                )
            } else {
                let code = settings.code.clone();
                let ykman = settings.ykman_account.clone();
                let session = crate::run::obtain(&settings, &mut || {
                    stsmfa_core::prompt::provider(&code, ykman.as_deref())
                })?;
                aws_credential_types::Credentials::new(
                    &session.access_key_id,
                    session.secret_access_key.expose(),
                    Some(session.session_token.expose().clone()),
                    None,
                    "stsmfa-admin-session",
                )
            };
        let keys = stsmfa_core::credentials::LongTermKeys {
            access_key_id: String::new(),
            secret_access_key: stsmfa_core::secret::Secret::new(String::new()),
        };
        let client = ClientSettings::new(&settings, keys);
        Iam::build(&client, creds, profile)
    }

    fn build(
        s: &ClientSettings,
        creds: aws_credential_types::Credentials,
        profile: String,
    ) -> Result<Iam, Fail> {
        use aws_config::{retry::RetryConfig, timeout::TimeoutConfig};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail!("cannot start the network runtime: {e}"))?;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5).min(s.timeout))
            .operation_attempt_timeout(s.timeout)
            .build();
        // Throttling on a big account is normal: more attempts, longer backoff.
        let attempts = max_attempts(std::env::var("AWS_MAX_ATTEMPTS").ok().as_deref())?;
        let retry = RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_max_backoff(Duration::from_secs(20));
        let conf = crate::aws::sdk_config(&rt, s, creds, timeouts, retry);
        let sts = aws_sdk_sts::Client::new(&conf);
        let timeout_secs = s.timeout.as_secs().max(1);
        // Who am I, first and with at most one retry: an unreachable endpoint
        // is one error in a second, not eight backed-off attempts per call.
        let first = RetryConfig::standard().with_max_attempts(attempts.min(2));
        let me = rt
            .block_on(
                sts.get_caller_identity()
                    .customize()
                    .config_override(aws_sdk_sts::config::Builder::default().retry_config(first))
                    .send(),
            )
            .map_err(|e| iam_error("GetCallerIdentity", e, timeout_secs).to_fail(&profile))?;
        let caller = Caller {
            account: me.account().unwrap_or_default().to_owned(),
            arn: me.arn().unwrap_or_default().to_owned(),
        };
        Ok(Iam {
            iam: aws_sdk_iam::Client::new(&conf),
            rt,
            profile,
            caller,
            timeout_secs,
        })
    }

    /// Runs one IAM call (`action` is its IAM action name, for messages).
    pub fn call<T, E, F>(&self, action: &'static str, fut: F) -> Result<T, IamError>
    where
        F: Future<Output = Result<T, aws_sdk_iam::error::SdkError<E, HttpResponse>>>,
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.rt
            .block_on(fut)
            .map_err(|e| iam_error(action, e, self.timeout_secs))
    }

    /// Every page of a paginated call (`into_paginator().send()`), as one call.
    pub fn pages<T, E>(
        &self,
        action: &'static str,
        stream: PaginationStream<Result<T, aws_sdk_iam::error::SdkError<E, HttpResponse>>>,
    ) -> Result<Vec<T>, IamError>
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(action, async move {
            let pages: Vec<Result<T, _>> = stream.collect().await;
            pages.into_iter().collect()
        })
    }

    /// The account the credentials belong to.
    pub fn account(&self) -> &str {
        &self.caller.account
    }

    /// The ARN the calls are made as (the user sync runs as never confines itself).
    pub fn caller_arn(&self) -> &str {
        &self.caller.arn
    }
}

use aws_sdk_iam::config::http::HttpResponse;
use aws_smithy_async::future::pagination_stream::PaginationStream;

/// Sorts an SDK error of `action` into the kinds callers branch on.
pub fn iam_error<E>(
    action: &'static str,
    e: aws_sdk_iam::error::SdkError<E, HttpResponse>,
    timeout_secs: u64,
) -> IamError
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_iam::error::ProvideErrorMetadata;
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    match code.as_str() {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            IamError::Denied { action, message }
        }
        "NoSuchEntity" => IamError::NotFound { action, message },
        "EntityAlreadyExists" => IamError::Exists { action, message },
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => IamError::Throttled { action, message },
        "PasswordPolicyViolation" => IamError::PasswordPolicy { action, message },
        "LimitExceeded" => IamError::Limit { action, message },
        _ => IamError::Other {
            action,
            source: crate::aws::sort_sdk_error(e, timeout_secs),
        },
    }
}

/// Attempts per IAM call: `AWS_MAX_ATTEMPTS` as the AWS CLI reads it (a
/// cron job may want to fail fast), else 8, more than the SDK's 3, since
/// a big account's lists are throttled as a matter of course.
fn max_attempts(env: Option<&str>) -> Result<u32, Fail> {
    const DEFAULT: u32 = 8;
    match env.map(str::trim) {
        None | Some("") => Ok(DEFAULT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(fail!(
                "AWS_MAX_ATTEMPTS={} is not a number of attempts",
                stsmfa_core::escape(v)
            )
            .hint("set it to a whole number of at least 1 (1 = no retries), or unset it for 8")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{IamError, max_attempts};
    use stsmfa_core::sts::StsError;

    #[test]
    fn an_unreachable_iam_names_iam_s_endpoint_and_no_code() {
        for source in [
            StsError::Network("Connection refused".into()),
            StsError::Interrupted("connection reset".into()),
        ] {
            let f = IamError::Other {
                action: "GetGroup",
                source,
            }
            .to_fail("admin");
            assert!(f.message.starts_with("GetGroup: "), "{}", f.message);
            let hints = f.hints.join("\n");
            assert!(hints.contains("AWS_ENDPOINT_URL_IAM"), "{hints}");
            assert!(
                !hints.contains("_STS") && !hints.contains("MFA code"),
                "{hints}"
            );
        }
        // GetCallerIdentity is an STS call: its hints stay STS's.
        let f = IamError::Other {
            action: "GetCallerIdentity",
            source: StsError::Network("Connection refused".into()),
        }
        .to_fail("admin");
        assert!(f.hints.join("\n").contains("AWS_ENDPOINT_URL_STS"));
    }

    #[test]
    fn max_attempts_defaults_to_eight_and_takes_the_variable() {
        assert_eq!(max_attempts(None).unwrap(), 8);
        assert_eq!(max_attempts(Some("")).unwrap(), 8);
        assert_eq!(max_attempts(Some("1")).unwrap(), 1);
        assert_eq!(max_attempts(Some(" 3 ")).unwrap(), 3);
    }

    #[test]
    fn max_attempts_refuses_what_is_not_a_count() {
        for bad in ["0", "-1", "two", "2.5"] {
            let e = max_attempts(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("AWS_MAX_ATTEMPTS") && e.contains(bad), "{e}");
        }
    }
}
