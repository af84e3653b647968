//! The clock: TOTP codes are for 30-second steps, so a clock ~30 s off makes
//! every code "wrong". Measured against the `Date` header of an STS reply.

use super::Aws;
use std::time::SystemTime;
use stsmfa_core::doctor_report::Check;
use stsmfa_core::sts::StsError;

/// Over this, a warning: codes near the end of their step start failing.
pub const WARN_SECS: i64 = 10;
/// Over this, a failure: a code is already a step off.
pub const FAIL_SECS: i64 = 30;

/// The clock line, and whether AWS answered at all (the later groups would
/// only repeat a network failure).
pub fn check(aws: &dyn Aws) -> (Check, bool) {
    match aws.sts_date() {
        Ok(Some((server, local))) => (judge(skew_secs(server, local)), true),
        Ok(None) => (
            Check::warn(
                "clock",
                "the STS reply had no readable Date header: clock not checked",
            )
            .fix(
                "check this machine's clock against a time server (timedatectl, chronyc tracking)",
            ),
            true,
        ),
        Err(e @ (StsError::Network(_) | StsError::Interrupted(_) | StsError::Timeout(_))) => {
            let f = e.to_fail(None);
            (Check::from_fail("clock", &f), false)
        }
        // Any other answer still carried a Date, but the SDK keeps it from
        // us on an error: the identity line says what went wrong.
        Err(e) => (
            Check::warn("clock", format!("clock not checked: {e}"))
                .fix("see the identity line below"),
            true,
        ),
    }
}

/// Seconds the local clock is behind (negative: ahead of) STS's, both in
/// whole seconds as the `Date` header has them.
fn skew_secs(server: SystemTime, local: SystemTime) -> i64 {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    };
    secs(server) - secs(local)
}

fn judge(skew: i64) -> Check {
    // Whole seconds on both sides: a measured 1 s may be none at all.
    let how = match skew {
        -1..=1 => "in step with STS (within 1 s)".to_owned(),
        s if s > 0 => format!("{s} s behind STS"),
        s => format!("{} s ahead of STS", -s),
    };
    let fix = "sync the clock: `timedatectl set-ntp true` (systemd), or start chrony/ntpd";
    match skew.abs() {
        s if s > FAIL_SECS => Check::fail(
            "clock",
            format!("this machine's clock is {how}: TOTP codes will be rejected"),
        )
        .fix(fix),
        s if s > WARN_SECS => Check::warn(
            "clock",
            format!("this machine's clock is {how}: codes near the end of their 30 s step may be rejected"),
        )
        .fix(fix),
        _ => Check::ok("clock", format!("this machine's clock is {how}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeAws;
    use super::*;
    use stsmfa_core::doctor_report::Status;

    fn status(skew: i64) -> Status {
        let aws = FakeAws {
            skew: Some(skew),
            ..FakeAws::default()
        };
        check(&aws).0.status
    }

    #[test]
    fn warns_over_10_s_and_fails_over_30_s_either_way() {
        assert_eq!(status(0), Status::Ok);
        assert_eq!(status(10), Status::Ok);
        assert_eq!(status(-11), Status::Warn);
        assert_eq!(status(30), Status::Warn);
        assert_eq!(status(31), Status::Fail);
        assert_eq!(status(-45), Status::Fail);
    }

    #[test]
    fn one_second_either_way_is_in_step() {
        for skew in [-1, 0, 1] {
            let aws = FakeAws {
                skew: Some(skew),
                ..FakeAws::default()
            };
            let c = check(&aws).0;
            assert!(
                c.message.contains("in step with STS"),
                "{skew}: {}",
                c.message
            );
        }
    }

    #[test]
    fn says_which_way_the_clock_is_off() {
        let aws = FakeAws {
            skew: Some(-45),
            ..FakeAws::default()
        };
        let (c, reached) = check(&aws);
        assert!(reached);
        assert!(c.message.contains("45 s ahead of STS"), "{}", c.message);
        assert!(c.fix[0].contains("timedatectl"));
    }

    #[test]
    fn no_date_header_is_a_warning_and_no_network_stops_the_aws_checks() {
        let aws = FakeAws {
            skew: None,
            ..FakeAws::default()
        };
        assert_eq!(check(&aws).0.status, Status::Warn);
        let aws = FakeAws {
            identity: Err(StsError::Network("Connection refused".into())),
            ..FakeAws::default()
        };
        let (c, reached) = check(&aws);
        assert_eq!(c.status, Status::Fail);
        assert!(!reached);
        assert!(c.message.contains("cannot reach AWS"));
    }
}
