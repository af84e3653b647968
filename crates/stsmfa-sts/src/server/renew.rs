//! One renewal at a time for every request of the endpoint.
//!
//! A request finds the session in memory while it has more than the refresh
//! margin left. Otherwise the first request renews it (through the same
//! session logic, lock and store as `credential-process`) and the others
//! wait for that renewal, for a bounded time. A failed renewal is
//! remembered for a while and answered from memory, so that SDKs retrying
//! in a loop never make stsmfa retry STS (or a prompt) in a loop.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use stsmfa_core::credentials::Session;
use stsmfa_core::error::Fail;

/// Where new sessions come from: `run::obtain` in the real endpoint.
pub trait Source: Send + Sync {
    fn obtain(&self) -> Result<Session, Fail>;
}

impl<F: Fn() -> Result<Session, Fail> + Send + Sync> Source for F {
    fn obtain(&self) -> Result<Session, Fail> {
        self()
    }
}

/// How long to serve and to wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A session with this much left or less is renewed (the refresh margin).
    pub margin: Duration,
    /// How long a request waits for a renewal in progress (an MFA code
    /// being typed) before it is answered "not yet".
    pub wait: Duration,
    /// How long a failed renewal is answered from memory before a request
    /// may start another.
    pub hold: Duration,
}

/// The answer to one request.
#[derive(Debug)]
pub enum Answer {
    Session(Session),
    /// The last renewal failed (now, or less than `hold` ago).
    Failed(Fail),
    /// A renewal is still going on after `wait`.
    Busy,
}

#[derive(Default)]
struct State {
    current: Option<Session>,
    renewing: bool,
    failed: Option<Failed>,
    renewals: u64,
}

struct Failed {
    fail: Fail,
    at: Instant,
}

pub struct Coordinator<S> {
    source: S,
    timing: Timing,
    now: fn() -> SystemTime,
    state: Mutex<State>,
    changed: Condvar,
}

impl<S: Source> Coordinator<S> {
    pub fn new(source: S, timing: Timing, now: fn() -> SystemTime) -> Self {
        Coordinator {
            source,
            timing,
            now,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// Starts with a session got before serving (the first code is asked
    /// when the command starts, not on the SDK's first call).
    pub fn with_session(self, session: Session) -> Self {
        self.lock().current = Some(session);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current session, renewed first when it is within the margin.
    pub fn get(&self) -> Answer {
        let deadline = Instant::now() + self.timing.wait;
        let mut st = self.lock();
        loop {
            if let Some(s) = &st.current
                && s.is_fresh((self.now)(), self.timing.margin)
            {
                return Answer::Session(s.clone());
            }
            if let Some(f) = &st.failed
                && f.at.elapsed() < self.timing.hold
            {
                return Answer::Failed(copy(&f.fail));
            }
            if !st.renewing {
                return self.renew(st);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Answer::Busy;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Renews on this request's thread, without the state lock, so that
    /// the requests that come meanwhile wait on the condition variable.
    fn renew(&self, mut st: MutexGuard<'_, State>) -> Answer {
        st.renewing = true;
        st.renewals += 1;
        stsmfa_core::diag(&format!(
            "endpoint: renewing the session (renewal {})",
            st.renewals
        ));
        let first_failure = st.failed.is_none();
        drop(st);
        // Whatever happens (a panic too), the next request may renew again.
        let done = Done(self);
        let got = self.source.obtain();
        let mut st = self.lock();
        let answer = match got {
            Ok(session) => {
                if st.failed.take().is_some() {
                    stsmfa_core::note("the credential endpoint renewed the session again");
                }
                st.current = Some(session.clone());
                Answer::Session(session)
            }
            Err(fail) => {
                // One line per stretch of failures, not one per request
                // (its hints on it too, as in the answer).
                if first_failure {
                    let mut line = format!(
                        "the credential endpoint could not renew the session: {}",
                        fail.message
                    );
                    for hint in &fail.hints {
                        line += &format!("; hint: {hint}");
                    }
                    stsmfa_core::warn(&line);
                }
                st.failed = Some(Failed {
                    fail: copy(&fail),
                    at: Instant::now(),
                });
                Answer::Failed(fail)
            }
        };
        drop(st);
        drop(done);
        answer
    }
}

/// A failure to hand to each request that meets it.
fn copy(f: &Fail) -> Fail {
    Fail {
        message: f.message.clone(),
        hints: f.hints.clone(),
        code: f.code,
    }
}

/// Ends a renewal and wakes its waiters.
struct Done<'a, S: Source>(&'a Coordinator<S>);

impl<S: Source> Drop for Done<'_, S> {
    fn drop(&mut self) {
        self.0.lock().renewing = false;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use stsmfa_core::fail;
    use stsmfa_core::secret::Secret;

    fn session(id: &str, left: u64) -> Session {
        Session {
            access_key_id: id.into(),
            secret_access_key: Secret::new("secret".into()),
            session_token: Secret::new("token".into()),
            expiration: stsmfa_core::credentials::unix(SystemTime::now()) + left,
        }
    }

    fn timing() -> Timing {
        Timing {
            margin: Duration::from_secs(60),
            wait: Duration::from_secs(10),
            hold: Duration::from_secs(5),
        }
    }

    /// A source that counts its calls and takes `delay` to answer.
    struct Counting {
        calls: AtomicU32,
        delay: Duration,
        fail: bool,
    }

    impl Source for Counting {
        fn obtain(&self) -> Result<Session, Fail> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(self.delay);
            if self.fail {
                return Err(fail!("STS is down").hint("try later"));
            }
            Ok(session(&format!("ASIARENEWED{n:09}"), 3600))
        }
    }

    fn counting(delay_ms: u64, fail: bool) -> Counting {
        Counting {
            calls: AtomicU32::new(0),
            delay: Duration::from_millis(delay_ms),
            fail,
        }
    }

    #[test]
    fn a_fresh_session_is_served_without_a_renewal() {
        let c = Coordinator::new(counting(0, false), timing(), SystemTime::now)
            .with_session(session("ASIAFRESH0000000001", 3600));
        for _ in 0..5 {
            assert!(
                matches!(c.get(), Answer::Session(s) if s.access_key_id == "ASIAFRESH0000000001")
            );
        }
        assert_eq!(c.source.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_session_within_the_margin_is_renewed_once() {
        let c = Coordinator::new(counting(0, false), timing(), SystemTime::now)
            .with_session(session("ASIAOLD000000000001", 30));
        for _ in 0..3 {
            assert!(
                matches!(c.get(), Answer::Session(s) if s.access_key_id == "ASIARENEWED000000001")
            );
        }
        assert_eq!(c.source.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_hundred_concurrent_requests_during_a_renewal_make_one_call() {
        let c = Arc::new(Coordinator::new(
            counting(300, false),
            timing(),
            SystemTime::now,
        ));
        let start = Arc::new(std::sync::Barrier::new(100));
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let (c, start) = (c.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    match c.get() {
                        Answer::Session(s) => s.access_key_id,
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), "ASIARENEWED000000001");
        }
        assert_eq!(c.source.calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.lock().renewals, 1);
    }

    #[test]
    fn a_failure_is_answered_from_memory_until_the_hold_passes() {
        let mut t = timing();
        t.hold = Duration::from_millis(300);
        let c = Coordinator::new(counting(0, true), t, SystemTime::now);
        for _ in 0..50 {
            match c.get() {
                Answer::Failed(f) => assert_eq!(f.message, "STS is down"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            c.source.calls.load(Ordering::SeqCst),
            1,
            "no retry in a loop"
        );
        std::thread::sleep(Duration::from_millis(350));
        assert!(matches!(c.get(), Answer::Failed(_)));
        assert_eq!(
            c.source.calls.load(Ordering::SeqCst),
            2,
            "tried again after the hold"
        );
    }

    #[test]
    fn waiters_give_up_after_the_bounded_wait_and_the_renewal_goes_on() {
        let mut t = timing();
        t.wait = Duration::from_millis(100);
        let c = Arc::new(Coordinator::new(counting(600, false), t, SystemTime::now));
        let renewer = {
            let c = c.clone();
            std::thread::spawn(move || matches!(c.get(), Answer::Session(_)))
        };
        std::thread::sleep(Duration::from_millis(50));
        let began = Instant::now();
        assert!(matches!(c.get(), Answer::Busy));
        assert!(began.elapsed() < Duration::from_millis(500));
        assert!(renewer.join().unwrap());
        assert!(matches!(c.get(), Answer::Session(_)));
        assert_eq!(c.source.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_source_does_not_leave_waiters_stuck() {
        let calls = AtomicU32::new(0);
        let c = Coordinator::new(
            move || -> Result<Session, Fail> {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom");
                }
                Ok(session("ASIAAFTERPANIC00001", 3600))
            },
            timing(),
            SystemTime::now,
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.get()));
        assert!(r.is_err());
        assert!(matches!(c.get(), Answer::Session(_)));
    }
}
