//! stsmfa reads the AWS config files with its own parser (the small binary
//! cannot link the AWS SDK). This differential test holds it to aws-config's
//! parser on generated files: the same profiles, the same values, the same
//! files refused.

use aws_config::profile::ProfileSet as SdkSet;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};
use proptest::prelude::*;
use std::collections::HashMap;
use stsmfa_core::profiles::{FileKind, ProfileSet};

const NAMES: &[&str] = &["default", "work", "work-mfa", "a.b@c"];
const KEYS: &[&str] = &[
    "region",
    "Mfa_Serial",
    "aws_access_key_id",
    "s3",
    "credential_process",
];

fn line() -> impl Strategy<Value = String> {
    let name = prop::sample::select(NAMES);
    let key = prop::sample::select(KEYS);
    let value = prop::sample::select(
        &[
            "",
            "eu-west-1",
            "a#b",
            "a #comment",
            "a ;c",
            "x = y",
            "arn:aws:iam::1:mfa/alice",
            "stsmfa credential-process work",
        ][..],
    );
    prop_oneof![
        name.clone().prop_map(|n| format!("[profile {n}]")),
        name.clone().prop_map(|n| format!("[{n}]")),
        name.prop_map(|n| format!("[profile {n}] # header comment")),
        Just("[sso-session s]".to_owned()),
        Just("[services x]".to_owned()),
        Just("[profile bad name!]".to_owned()),
        (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k} = {v}")),
        (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}={v}")),
        value.clone().prop_map(|v| format!("  {v}")),
        (key, value).prop_map(|(k, v)| format!("\t{k} = {v}")),
        Just(String::new()),
        Just("# comment".to_owned()),
        Just("; comment".to_owned()),
        Just("no equals sign".to_owned()),
        Just("= no name".to_owned()),
    ]
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..14), any::<bool>()).prop_map(|(lines, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        lines.join(eol) + eol
    })
}

fn sdk(config: &str, credentials: &str) -> Option<SdkSet> {
    let fs = Fs::from_map(HashMap::from([
        ("/h/.aws/config".to_owned(), config.as_bytes().to_vec()),
        (
            "/h/.aws/credentials".to_owned(),
            credentials.as_bytes().to_vec(),
        ),
    ]));
    let env = Env::from_slice(&[("HOME", "/h")]);
    pollster::block_on(aws_config::profile::load(
        &fs,
        &env,
        &EnvConfigFiles::default(),
        None,
    ))
    .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn reads_the_files_as_aws_config_does(config in file(), credentials in file()) {
        let ours = ProfileSet::parse(&[
            (FileKind::Config, &config),
            (FileKind::Credentials, &credentials),
        ]);
        let theirs = sdk(&config, &credentials);
        prop_assert_eq!(ours.is_ok(), theirs.is_some(), "accepted by one parser only");
        let (Ok(ours), Some(theirs)) = (ours, theirs) else { return Ok(()) };
        let mut a: Vec<&str> = ours.profiles().collect();
        let mut b: Vec<&str> = theirs.profiles().collect();
        a.sort_unstable();
        b.sort_unstable();
        prop_assert_eq!(&a, &b);
        for name in a {
            let (p, q) = (ours.get_profile(name).unwrap(), theirs.get_profile(name).unwrap());
            for key in KEYS {
                prop_assert_eq!(p.get(key), q.get(&key.to_ascii_lowercase()), "[{}] {}", name, key);
            }
        }
    }
}
