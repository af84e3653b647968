//! `admin onboard USER`: a new IAM user with a temporary password (reset
//! required at first sign-in) in the onboarding group, optionally with an
//! access key. The secrets go once into the hand-over text, on stdout or in
//! a new 0600 file, and nowhere else: not in errors, logs or argv.

use super::groups;
use super::password::{self, Rules};
use super::{Iam, IamError};
use std::io::Write;
use std::path::Path;
use stsmfa_core::admin_cli::OnboardArgs;
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::secret::Secret;

/// What the admin hands the new user.
struct Handover {
    url: String,
    user: String,
    password: Secret<String>,
    key: Option<(String, Secret<String>)>,
}

impl Handover {
    fn text(&self) -> String {
        let mut t = format!(
            "Sign-in URL:         {}\nUser name:           {}\nTemporary password:  {}\n",
            self.url,
            self.user,
            self.password.expose()
        );
        if let Some((id, secret)) = &self.key {
            t += &format!(
                "Access key ID:       {id}\nSecret access key:   {}\n",
                secret.expose()
            );
        }
        t += &format!(
            "\nNext steps for {user}:\n  1. Sign in at the URL above with the temporary password; AWS asks for a new\n     password at once (or: aws iam change-password --old-password … --new-password …).\n",
            user = self.user
        );
        if self.key.is_some() {
            t += "  2. Put the access key into a profile (aws configure --profile work) and set up\n     MFA with `stsmfa enroll work`";
        } else {
            t += "  2. Set up MFA: `stsmfa enroll PROFILE`";
        }
        t += &format!(
            ", or in the console: Security credentials → Assign MFA\n     device, named {}.\n  3. Until MFA is set up, only the password change and the MFA setup are allowed;\n     then sign in again with MFA (console) or use stsmfa's sessions (CLI).\n",
            self.user
        );
        t
    }
}

fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// The new hand-over file: created now (O_EXCL, 0600), so that a name
/// already taken stops the command before IAM changes.
fn create_out(path: &Path) -> Result<std::fs::File, Fail> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| {
        fail!("--out {}: cannot create it: {e}", path.display())
            .hint("the file must not exist yet; pick a new name (it gets mode 0600)")
    })
}

pub fn onboard(args: &OnboardArgs) -> Result<u8, Fail> {
    let user = args.user.as_str();
    if !valid_user_name(user) {
        return Err(
            Fail::usage(format!("'{user}' is not a valid IAM user name"))
                .hint("up to 64 letters, digits and +=,.@_-"),
        );
    }
    let groups = groups::parse(&args.groups)?;
    let iam = Iam::connect(&args.conn)?;
    let fail = |e: IamError| e.to_fail(&iam.profile);

    match iam.call("GetUser", iam.iam.get_user().user_name(user).send()) {
        Ok(_) => {
            return Err(
                fail!("the IAM user {user} already exists; nothing was changed")
                    .hint(format!("pick another name, or give {user} a new temporary password: aws iam update-login-profile --user-name {user} --password-reset-required --password …"))
                    .hint("`stsmfa admin sync` moves existing users into the right group"),
            );
        }
        Err(IamError::NotFound { .. }) => {}
        Err(e) => return Err(fail(e)),
    }
    let mut all_groups = vec![groups.onboarding.clone()];
    all_groups.extend(
        args.extra_groups
            .iter()
            .filter(|g| **g != groups.onboarding)
            .cloned(),
    );
    for g in &all_groups {
        match iam.call(
            "GetGroup",
            iam.iam.get_group().group_name(g).max_items(1).send(),
        ) {
            Ok(_) => {}
            Err(IamError::NotFound { .. }) => {
                let hint = if *g == groups.onboarding {
                    "run `stsmfa admin setup` first (it creates the groups)".to_owned()
                } else {
                    format!("create it first: aws iam create-group --group-name {g}")
                };
                return Err(fail!("the group {g} does not exist; nothing was changed").hint(hint));
            }
            Err(e) => return Err(fail(e)),
        }
    }
    let rules = match iam.call(
        "GetAccountPasswordPolicy",
        iam.iam.get_account_password_policy().send(),
    ) {
        Ok(out) => Rules {
            min_length: out
                .password_policy()
                .and_then(|p| p.minimum_password_length())
                .unwrap_or(8)
                .max(0) as usize,
        },
        Err(IamError::NotFound { .. }) => Rules::default(),
        Err(e) => return Err(fail(e)),
    };
    let url = sign_in_url(&iam).map_err(fail)?;

    if args.dry_run {
        stsmfa_core::emit(&format!("would create user {user}\n"));
        stsmfa_core::emit(&format!(
            "would create a login profile for {user} (temporary password, reset required)\n"
        ));
        for g in &all_groups {
            stsmfa_core::emit(&format!("would add {user} to group {g}\n"));
        }
        if args.access_key {
            stsmfa_core::emit(&format!("would create an access key for {user}\n"));
        }
        stsmfa_core::emit(&format!("sign-in URL: {url}\n"));
        return Ok(0);
    }

    let mut out_file = args.out.as_deref().map(create_out).transpose()?;
    let password = password::generate(rules)?;
    let mut done: Vec<String> = Vec::new();
    let mut handover: Option<Handover> = None;
    let result = (|| -> Result<(), (String, IamError)> {
        let step = |s: &str| s.to_owned();
        iam.call("CreateUser", iam.iam.create_user().user_name(user).send())
            .map_err(|e| (step("create the user"), e))?;
        done.push(format!("created user {user}"));
        iam.call(
            "CreateLoginProfile",
            iam.iam
                .create_login_profile()
                .user_name(user)
                .password(password.expose())
                .password_reset_required(true)
                .send(),
        )
        .map_err(|e| (step("create the login profile"), e))?;
        done.push(format!(
            "created a login profile for {user} (temporary password, reset required)"
        ));
        handover = Some(Handover {
            url: url.clone(),
            user: user.to_owned(),
            password: Secret::new(password.expose().clone()),
            key: None,
        });
        for g in &all_groups {
            iam.call(
                "AddUserToGroup",
                iam.iam
                    .add_user_to_group()
                    .group_name(g)
                    .user_name(user)
                    .send(),
            )
            .map_err(|e| (format!("add {user} to group {g}"), e))?;
            done.push(format!("added {user} to group {g}"));
        }
        if args.access_key {
            let out = iam
                .call(
                    "CreateAccessKey",
                    iam.iam.create_access_key().user_name(user).send(),
                )
                .map_err(|e| (step("create the access key"), e))?;
            if let (Some(h), Some(k)) = (handover.as_mut(), out.access_key()) {
                h.key = Some((
                    k.access_key_id().to_owned(),
                    Secret::new(k.secret_access_key().to_owned()),
                ));
            }
            done.push(format!("created an access key for {user}"));
        }
        Ok(())
    })();

    for line in &done {
        stsmfa_core::emit(&format!("{line}\n"));
    }
    // A password (or key) IAM now has is handed over even if a later step
    // failed: it cannot be read back.
    if let Some(h) = &handover {
        let text = h.text();
        match (&mut out_file, &args.out) {
            (Some(f), Some(path)) => {
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| {
                        fail!("--out {}: cannot write the hand-over text: {e}", path.display())
                            .hint(format!("give {user} a new temporary password: aws iam update-login-profile --user-name {user} --password-reset-required --password …"))
                    })?;
                stsmfa_core::emit(&format!(
                    "hand-over text for {user} (password{}) written to {} (mode 0600)\n",
                    if h.key.is_some() { ", access key" } else { "" },
                    path.display()
                ));
            }
            _ => stsmfa_core::emit(&format!("\n{text}")),
        }
    } else if let Some(path) = &args.out {
        drop(out_file.take());
        let _ = std::fs::remove_file(path);
    }

    match result {
        Ok(()) => Ok(0),
        Err((what, e)) => {
            let f = e.to_fail(&iam.profile);
            let mut out = fail!("onboarding {user} stopped: could not {what}: {}", f.message);
            out.hints = f.hints;
            if done.is_empty() {
                out = out.hint("nothing was changed");
            } else {
                out = out
                    .hint(format!("already done: {}", done.join("; ")))
                    .hint(format!(
                        "finish the rest by hand (aws iam add-user-to-group / create-access-key), or undo it and onboard again: aws iam delete-login-profile --user-name {user}; aws iam remove-user-from-group …; aws iam delete-user --user-name {user}"
                    ));
            }
            Err(out)
        }
    }
}

/// The console sign-in URL: the account alias if there is one, else the ID.
fn sign_in_url(iam: &Iam) -> Result<String, IamError> {
    let out = iam.call("ListAccountAliases", iam.iam.list_account_aliases().send())?;
    let id = match out.account_aliases().first() {
        Some(alias) => alias.clone(),
        None => iam.account().to_owned(),
    };
    Ok(format!("https://{id}.signin.aws.amazon.com/console"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handover_names_everything_once() {
        let h = Handover {
            url: "https://acme.signin.aws.amazon.com/console".into(),
            user: "bob".into(),
            password: Secret::new("Tmp-pass-123!".into()),
            key: Some(("AKIAEXAMPLE".into(), Secret::new("s3cr3t".into()))),
        };
        let t = h.text();
        assert_eq!(t.matches("Tmp-pass-123!").count(), 1);
        assert_eq!(t.matches("s3cr3t").count(), 1);
        assert!(t.contains("https://acme.signin.aws.amazon.com/console"));
        assert!(t.contains("stsmfa enroll work"));
        let h = Handover { key: None, ..h };
        assert!(!h.text().contains("Secret access key"));
    }

    #[test]
    fn user_names_follow_iam() {
        assert!(valid_user_name("bob.smith@example.com"));
        assert!(!valid_user_name("bob smith"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name(&"x".repeat(65)));
    }
}
