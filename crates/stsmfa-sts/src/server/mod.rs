//! The local credential endpoint (`exec --server`, `serve`): the container
//! credentials protocol that every AWS SDK renews from by itself
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`),
//! so a job may outlast any one session.
//!
//! It listens on 127.0.0.1 only, answers only requests whose Host is that
//! address and that carry its token (32 random bytes, compared in constant
//! time), and hands out the profile's session through the same session
//! logic, lock and store as `credential-process` (see `renew`).

mod child;
mod http;
mod renew;

use crate::run::obtain;
use renew::{Answer, Coordinator, Timing};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use stsmfa_core::cli::{ExecArgs, ServeArgs};
use stsmfa_core::config::Settings;
use stsmfa_core::credentials::Session;
use stsmfa_core::error::Fail;
use stsmfa_core::secret::{Secret, mask_key_id};
use stsmfa_core::{commands, fail, output, prompt};

/// The two variables the SDKs read.
const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";

/// What must not reach the tools: fixed keys (which the SDKs would prefer
/// to the endpoint and never renew), a profile, and the other ways of
/// pointing the SDKs at a container endpoint (which win over FULL_URI).
const UNSET: [&str; 9] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "STSMFA_EXPIRATION_EPOCH",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Requests served at once; the rest queue (each one of them waits for the
/// same renewal anyway).
const WORKERS: usize = 16;

/// How long a request waits for a renewal in progress (a code being typed).
const WAIT: Duration = Duration::from_secs(60);

/// How long a failed renewal is answered from memory: SDKs retry at once,
/// and each retry must not start a new STS call or prompt.
const HOLD: Duration = Duration::from_secs(5);

/// `stsmfa exec --server PROFILE -- CMD`.
pub fn exec(args: &ExecArgs) -> Result<u8, Fail> {
    let settings = commands::settings(&args.base)?;
    let profile = settings.served_profile().to_owned();
    let region = settings.region.clone();
    let endpoint = Endpoint::start(settings, 0)?;
    let mut set = endpoint.variables();
    set.push(("STSMFA_PROFILE", profile));
    if let Some(r) = region {
        set.push(("AWS_REGION", r.clone()));
        set.push(("AWS_DEFAULT_REGION", r));
    }
    child::run(&args.command, &set, &UNSET)
}

/// `stsmfa serve PROFILE [--port N]`: prints the variables, then serves
/// until SIGINT, SIGTERM or SIGHUP.
pub fn serve(args: &ServeArgs) -> Result<u8, Fail> {
    let settings = commands::settings(&args.base)?;
    let profile = settings.served_profile().to_owned();
    let endpoint = Endpoint::start(settings, args.port.unwrap_or(0))?;
    // Caught only now: Ctrl-C at the first code prompt ends stsmfa as usual.
    #[cfg(unix)]
    let mut stop = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
        .map_err(|e| fail!("cannot catch signals: {e}"))?;
    stsmfa_core::emit(&output::env_lines_unsetting(
        &endpoint.variables(),
        &UNSET,
        args.format,
    )?);
    stsmfa_core::note(&format!(
        "serving the session of profile {profile} at {} (127.0.0.1 only); stop with Ctrl-C",
        endpoint.url
    ));
    #[cfg(unix)]
    if let Some(sig) = stop.forever().next() {
        stsmfa_core::diag(&format!("signal {sig}: stopping"));
    }
    #[cfg(not(unix))]
    loop {
        std::thread::park();
    }
    stsmfa_core::note("the credential endpoint stopped");
    Ok(0)
}

/// A running endpoint: its threads serve until the process ends.
struct Endpoint {
    url: String,
    token: Secret<String>,
}

impl Endpoint {
    /// Listens on 127.0.0.1:`port` (0: any free port), then gets the first
    /// session (asking for a code now if one is needed), then serves.
    fn start(mut settings: Settings, port: u16) -> Result<Endpoint, Fail> {
        // A port in use is found before a code is spent.
        let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
            fail!("cannot listen on 127.0.0.1:{port}: {e}")
                .hint("choose another --port, or leave it out for any free one")
        })?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| fail!("the endpoint has no TCP port"))?;

        let first = obtain_with_profile_code(&settings)?;
        // `--refresh` is for the first session only.
        settings.refresh = false;
        settings.after_miss = false;
        let profile = settings.served_profile().to_owned();
        let timing = Timing {
            margin: margin(&settings),
            wait: WAIT,
            hold: HOLD,
        };
        let source = move || obtain_with_profile_code(&settings);
        let coordinator =
            Arc::new(Coordinator::new(source, timing, SystemTime::now).with_session(first));

        let token = http::new_token()?;
        let url = format!("http://127.0.0.1:{port}{}", http::PATH);
        stsmfa_core::diag(&format!(
            "credential endpoint for profile {profile} at {url}"
        ));

        let server = Arc::new(server);
        for _ in 0..WORKERS {
            let (server, coordinator, token, profile) = (
                server.clone(),
                coordinator.clone(),
                token.clone(),
                profile.clone(),
            );
            std::thread::spawn(move || {
                while let Ok(rq) = server.recv() {
                    respond(rq, &coordinator, &token, port, &profile);
                }
            });
        }
        Ok(Endpoint { url, token })
    }

    /// The variables that point the SDKs at the endpoint. The token is the
    /// one secret that goes into an environment.
    fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            (FULL_URI, self.url.clone()),
            (TOKEN, self.token.expose().clone()),
        ]
    }
}

/// A session with the profile's own code source (mfa_process, a dialog or
/// YubiKey, or the terminal stsmfa was started from).
fn obtain_with_profile_code(settings: &Settings) -> Result<Session, Fail> {
    let code = settings.code.clone();
    let ykman = settings.ykman_account.clone();
    obtain(settings, &mut || prompt::provider(&code, ykman.as_deref()))
}

/// The refresh margin of the session handed out: the role's for a role
/// profile (the session logic renews it at the same point).
fn margin(s: &Settings) -> Duration {
    s.roles.last().map_or(s.min_ttl, |r| r.min_ttl)
}

/// Answers one request, and logs it with `-v` (method, path, status and
/// the masked key ID handed out).
fn respond<S: renew::Source>(
    rq: tiny_http::Request,
    coordinator: &Coordinator<S>,
    token: &Secret<String>,
    port: u16,
    profile: &str,
) {
    let header = |name: &'static str| {
        rq.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    };
    let method = rq.method().as_str().to_owned();
    let route = http::route(
        &http::Request {
            method: &method,
            target: rq.url(),
            host: header("Host"),
            authorization: header("Authorization").map(str::as_bytes),
        },
        token,
        port,
    );
    let mut shown = String::new();
    let (status, body) = match route {
        http::Route::Credentials => match coordinator.get() {
            Answer::Session(s) => {
                shown = format!(" {}", mask_key_id(&s.access_key_id));
                (200, http::credentials_json(&s))
            }
            Answer::Failed(f) => (500, http::error_json("StsmfaRenewalFailed", &f)),
            Answer::Busy => {
                let f = fail!(
                    "the session of profile {profile} is still being renewed (an MFA code is awaited)"
                )
                .hint("enter the code where stsmfa asks for it, then try again");
                (503, http::error_json("StsmfaRenewalInProgress", &f))
            }
        },
        http::Route::Forbidden => (403, String::new()),
        http::Route::NotFound => (404, String::new()),
        http::Route::MethodNotAllowed => (405, String::new()),
    };
    let path = rq.url().split('?').next().unwrap_or_default().to_owned();
    stsmfa_core::diag(&format!("endpoint: {method} {path} {status}{shown}"));
    let mut response = tiny_http::Response::from_data(body.into_bytes()).with_status_code(status);
    if matches!(status, 200 | 500 | 503) {
        response = response.with_header(
            tiny_http::Header::from_bytes("Content-Type", "application/json")
                .expect("a valid header"),
        );
    }
    if status == 405 {
        response = response
            .with_header(tiny_http::Header::from_bytes("Allow", "GET").expect("a valid header"));
    }
    // A client that gave up (an SDK's timeout) is no error of ours.
    let _ = rq.respond(response);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use stsmfa_core::output::EnvFormat;

    #[test]
    fn serve_lines_set_the_endpoint_and_unset_static_keys_in_sh() {
        let e = Endpoint {
            url: "http://127.0.0.1:40123/credentials".into(),
            token: Secret::new("tok-abc_123".into()),
        };
        let lines = output::env_lines_unsetting(&e.variables(), &UNSET, EnvFormat::Sh).unwrap();
        let script = lines
            + r#"printf '%s|%s|%s|%s\n' "$AWS_CONTAINER_CREDENTIALS_FULL_URI" "$AWS_CONTAINER_AUTHORIZATION_TOKEN" "${AWS_PROFILE-unset}" "${AWS_SECRET_ACCESS_KEY-unset}""#;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("AWS_PROFILE", "work")
            .env("AWS_SECRET_ACCESS_KEY", "stale")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "http://127.0.0.1:40123/credentials|tok-abc_123|unset|unset\n"
        );
    }

    #[test]
    fn the_margin_is_the_role_sessions_for_a_role_profile() {
        use stsmfa_core::profiles::{FileKind, ProfileSet};
        let config = "[profile work]\nmfa_serial = arn:aws:iam::111122223333:mfa/a\n\
                      [profile admin]\nrole_arn = arn:aws:iam::444455556666:role/A\n\
                      source_profile = work\nduration_seconds = 900\n";
        let creds = "[work]\naws_access_key_id = AKIAEXAMPLEEXAMPLE12\naws_secret_access_key = s\n";
        let profiles =
            ProfileSet::parse(&[(FileKind::Config, config), (FileKind::Credentials, creds)])
                .unwrap();
        let env = |k: &str| match k {
            "STSMFA_STATE_DIR" => Some("/nonexistent/state".to_string()),
            "STSMFA_MIN_TTL" => Some("20m".to_string()),
            _ => None,
        };
        let opts = stsmfa_core::cli::SessionOpts::default();
        let source = stsmfa_core::config::resolve(Some("work"), &opts, &env, &profiles).unwrap();
        assert_eq!(margin(&source), Duration::from_secs(1200));
        // A 900 s role session cannot keep a 20-minute margin: a third of it.
        let role = stsmfa_core::config::resolve(Some("admin"), &opts, &env, &profiles).unwrap();
        assert_eq!(margin(&role), Duration::from_secs(300));
    }
}
