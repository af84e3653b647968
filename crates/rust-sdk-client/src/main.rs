//! `rust-sdk-client PROFILE ROLE_ARN`: what a Rust tool does with a profile
//! whose `credential_process` is stsmfa. The SDK's default chain runs the
//! process under its identity cache's load timeout: older SDK releases gave
//! it 5 s, the one pinned here derives about 20 s from its retry and timeout
//! settings, and a tool may set its own, which `RUST_SDK_LOAD_TIMEOUT=SECS`
//! does here as such a tool would. The client then calls
//! GetCallerIdentity and AssumeRole (which the bed allows only with MFA)
//! and prints `key=value` lines, never a secret. A failure prints the SDK's
//! error chain on stderr and exits 1.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [profile, role_arn] = args.as_slice() else {
        eprintln!("usage: rust-sdk-client PROFILE ROLE_ARN");
        return ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    match rt.block_on(run(profile, role_arn)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust-sdk-client: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(profile: &str, role_arn: &str) -> Result<(), String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).profile_name(profile);
    if let Some(secs) = std::env::var("RUST_SDK_LOAD_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        loader = loader.identity_cache(
            aws_config::identity::IdentityCache::lazy()
                .load_timeout(std::time::Duration::from_secs(secs))
                .build(),
        );
    }
    let conf = loader.load().await;
    // The client's own calls first: they go through the SDK's identity
    // cache, which bounds loading credentials (5 s by default), as in any tool.
    let sts = aws_sdk_sts::Client::new(&conf);
    let who = sts.get_caller_identity().send().await.map_err(chain)?;
    println!("arn={}", who.arn().unwrap_or_default());
    let role = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("rust-sdk-client")
        .send()
        .await
        .map_err(chain)?;
    let assumed = role
        .assumed_role_user()
        .map(|u| u.arn())
        .unwrap_or_default();
    println!("assumed_role_arn={assumed}");
    // Then the key the session has (the provider asked directly, outside that
    // cache: stsmfa answers from its own cache now).
    let provider = conf
        .credentials_provider()
        .ok_or("no credentials provider")?;
    let creds = provider.provide_credentials().await.map_err(chain)?;
    println!("access_key_id={}", creds.access_key_id());
    Ok(())
}

/// An error and its causes on one line (`Display` only: no raw replies).
fn chain(e: impl std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out += &format!(": {c}");
        cause = c.source();
    }
    out
}
