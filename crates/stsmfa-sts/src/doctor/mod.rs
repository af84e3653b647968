//! `stsmfa doctor`: the handful of questions asked first when a setup fails
//! (which config, which store, is the clock right, is the device there, does
//! the policy require MFA), answered in order, one line each with the fix.
//!
//! Each group is a module of plain functions over a small seam (`Aws`,
//! `Stores`, `Terminal`, the environment), so unit tests drive them with
//! fakes and `run` wires the real ones.

mod clock;
mod code;
mod config;
mod identity;
mod policy;
mod sessions;
mod store;

use crate::aws::{AwsSts, ClientSettings};
use std::time::SystemTime;
use stsmfa_core::cli::DoctorArgs;
use stsmfa_core::doctor_report::{Check, Report};
use stsmfa_core::error::Fail;
use stsmfa_core::sts::{Identity, StsError};

/// The AWS calls doctor makes, all with the long-term keys and none with a
/// code: a seam so the checks run against fakes in unit tests.
pub trait Aws {
    /// The `Date` header of an STS reply (GetCallerIdentity), and the local
    /// time it arrived; `None` when the reply had no readable `Date`.
    fn sts_date(&self) -> Result<Option<(SystemTime, SystemTime)>, StsError>;
    fn caller_identity(&self) -> Result<Identity, StsError>;
    /// The serials of the user's enabled (assigned) MFA devices.
    fn mfa_devices(&self, user: &str) -> Result<Vec<String>, StsError>;
    /// A harmless read-only call an MFA-enforcing policy denies without MFA.
    fn probe_without_mfa(&self) -> Result<(), StsError>;
}

/// The real calls, through the same SDK client as every session.
struct RealAws(AwsSts);

impl Aws for RealAws {
    fn sts_date(&self) -> Result<Option<(SystemTime, SystemTime)>, StsError> {
        self.0.sts_date()
    }
    fn caller_identity(&self) -> Result<Identity, StsError> {
        stsmfa_core::sts::Sts::caller_identity(&self.0)
    }
    fn mfa_devices(&self, user: &str) -> Result<Vec<String>, StsError> {
        stsmfa_core::sts::Sts::list_mfa_devices(&self.0, user)
    }
    fn probe_without_mfa(&self) -> Result<(), StsError> {
        self.0.list_account_aliases()
    }
}

/// `stsmfa doctor [PROFILE] [--json] [--store S] [--region R]`.
pub fn doctor(args: &DoctorArgs) -> Result<u8, Fail> {
    let env = &stsmfa_core::real_env;
    let profile = stsmfa_core::config::profile_name(args.profile.as_deref(), env);
    let mut checks = Vec::new();
    let found = config::checks(args, env, &config::RealFs, &mut checks);
    if let Some(settings) = found {
        checks.extend(store::checks(settings.store, &store::RealStores));
        checks.extend(code::checks(&settings, &code::RealTerminal));
        match crate::keys::resolve(&settings).and_then(|keys| {
            let id = keys.access_key_id.clone();
            AwsSts::new(&ClientSettings::new(&settings, keys)).map(|sts| (sts, id))
        }) {
            Ok((sts, key_id)) => {
                let aws = RealAws(sts);
                checks.extend(aws_checks(&settings, &key_id, &aws));
            }
            Err(fail) => checks.push(Check::from_fail("clock", &fail)),
        }
        checks.extend(sessions::checks(&settings, SystemTime::now()));
    }
    let report = Report { profile, checks };
    Ok(report.print(args.json))
}

/// Clock, identity and device, policy: the groups that ask AWS. After a
/// network failure of the first call the others would only repeat it.
fn aws_checks(settings: &stsmfa_core::config::Settings, key_id: &str, aws: &dyn Aws) -> Vec<Check> {
    let (clock, reached) = clock::check(aws);
    let mut out = vec![clock];
    if !reached {
        return out;
    }
    let (who, identity) = identity::identity(aws, key_id);
    out.push(who);
    if let Some(identity) = identity {
        out.push(identity::device(
            aws,
            &identity,
            settings.mfa_serial.as_deref(),
            &settings.profile,
        ));
        out.push(policy::check(aws, &identity));
    }
    out
}

#[cfg(test)]
pub(crate) mod fake {
    use super::Aws;
    use std::time::{Duration, SystemTime};
    use stsmfa_core::sts::{Identity, StsError};

    /// Planned answers for the doctor's AWS calls.
    pub struct FakeAws {
        pub skew: Option<i64>,
        pub identity: Result<Identity, StsError>,
        pub devices: Vec<String>,
        pub probe: Result<(), StsError>,
    }

    impl Default for FakeAws {
        fn default() -> FakeAws {
            FakeAws {
                skew: Some(0),
                identity: Ok(Identity {
                    arn: "arn:aws:iam::123456789012:user/alice".into(),
                    account: "123456789012".into(),
                }),
                devices: vec!["arn:aws:iam::123456789012:mfa/alice".into()],
                probe: Err(StsError::Denied("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:ListAccountAliases with an explicit deny in an identity-based policy".into())),
            }
        }
    }

    impl Aws for FakeAws {
        fn sts_date(&self) -> Result<Option<(SystemTime, SystemTime)>, StsError> {
            if let Err(e @ StsError::Network(_)) = &self.identity {
                return Err(e.clone());
            }
            let local = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
            Ok(self.skew.map(|s| {
                let server = if s >= 0 {
                    local + Duration::from_secs(s.unsigned_abs())
                } else {
                    local - Duration::from_secs(s.unsigned_abs())
                };
                (server, local)
            }))
        }
        fn caller_identity(&self) -> Result<Identity, StsError> {
            self.identity.clone()
        }
        fn mfa_devices(&self, _user: &str) -> Result<Vec<String>, StsError> {
            Ok(self.devices.clone())
        }
        fn probe_without_mfa(&self) -> Result<(), StsError> {
            self.probe.clone()
        }
    }
}
