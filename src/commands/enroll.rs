//! `enroll`: a new IAM user creates and enables their own virtual MFA device
//! with nothing but the self-service permissions of AWS's MFA policies.

use crate::cli::{EnrollArgs, SessionOpts};
use crate::codes::UsedCodes;
use crate::config;
use crate::error::Fail;
use crate::fail;
use crate::prompt::{Ask, CodeProvider, Tty};
use crate::sts::{AwsSts, ClientSettings, Sts};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub fn enroll(args: &EnrollArgs, verbose: bool) -> Result<u8, Fail> {
    let profiles = crate::profiles::load_real()?;
    let opts = SessionOpts {
        region: args.region.clone(),
        mfa_serial: None,
        ..Default::default()
    };
    let settings = config::resolve(
        args.profile.as_deref(),
        &opts,
        verbose,
        &crate::real_env,
        &profiles,
    )?;
    let profile = settings.profile.clone();
    let client = ClientSettings {
        profile: profile.clone(),
        region: settings.region.clone(),
        keys: settings.keys.clone(),
        timeout: super::network_timeout()?,
    };
    let aws = AwsSts::new(&client)?;
    let mut tty = Tty::open()?.ok_or_else(|| {
        fail!("enroll needs a terminal: it shows a QR code and asks for two codes")
            .hint("run it in an interactive terminal")
    })?;

    let id = aws.caller_identity().map_err(|e| e.to_fail(None))?;
    let Some(user) = id.user_name().map(str::to_owned) else {
        return Err(fail!("profile '{profile}' is not an IAM user ({}); only IAM users enroll a virtual MFA device here", id.arn)
            .hint("use the profile holding the IAM user's access key"));
    };
    let existing = aws.list_mfa_devices(&user).map_err(|e| e.to_fail(None))?;
    if !existing.is_empty() {
        return Err(fail!(
            "IAM user {user} already has an MFA device: {}",
            existing.join(", ")
        )
        .hint(format!(
            "stsmfa uses it: add `mfa_serial = {}` to [profile {profile}] in ~/.aws/config",
            existing[0]
        ))
        .hint("to replace it, deactivate the old device first (console, or an admin)"));
    }

    let device = create_device(&aws, &user, &id.account)?;
    let last_code = match activate(&aws, args, &mut tty, &user, &id.account, &device, &profile) {
        Ok(code) => code,
        Err(e) => return Err(cleanup(&aws, &device.serial, e)),
    };
    crate::emit(&format!(
        "\nMFA device {} is enabled for IAM user {user}.\n",
        device.serial
    ));
    // The code just spent must not be sent again for the first session.
    UsedCodes::new(&settings.state_dir, &device.serial).record(&last_code, SystemTime::now());

    record_serial(args, &profile, &device.serial)?;
    if !args.yes
        && ask_yes(&format!(
            "Get a first session for profile {profile} now? [Y/n] "
        ))?
    {
        crate::emit("The next code is needed (the ones just used cannot be used again).\n");
        let exe =
            std::env::current_exe().map_err(|e| fail!("cannot find the stsmfa binary: {e}"))?;
        let out = std::process::Command::new(exe)
            .args([
                "credential-process",
                &profile,
                "--mfa-serial",
                &device.serial,
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| fail!("cannot run stsmfa: {e}"))?;
        if out.success() {
            crate::emit(&format!(
                "A session for {profile} is cached. Try: aws sts get-caller-identity --profile {profile}-mfa\n"
            ));
        }
    } else {
        crate::emit(&format!(
            "Next: `stsmfa credential-process {profile}` gets a session (see README for ~/.aws/config).\n"
        ));
    }
    Ok(0)
}

struct Device {
    serial: String,
    seed: crate::secret::Secret<String>,
}

/// Creates `mfa/USER`, replacing an unused device left by an earlier try.
fn create_device(aws: &AwsSts, user: &str, account: &str) -> Result<Device, Fail> {
    match aws.create_virtual_mfa_device(user) {
        Ok((serial, seed)) => Ok(Device { serial, seed }),
        Err(crate::sts::StsError::Other { code, .. }) if code == "EntityAlreadyExists" => {
            let serial = format!("arn:aws:iam::{account}:mfa/{user}");
            // An earlier try that did not finish left it unassigned: it is of
            // no use to anyone, so remove it and start again.
            aws.delete_virtual_mfa_device(&serial).map_err(|_| {
                fail!("a virtual MFA device named mfa/{user} already exists but is not enabled (an earlier try that did not finish?)")
                    .hint(format!("ask an admin to delete it: aws iam delete-virtual-mfa-device --serial-number {serial}"))
            })?;
            let (serial, seed) = aws
                .create_virtual_mfa_device(user)
                .map_err(|e| e.to_fail(None))?;
            Ok(Device { serial, seed })
        }
        Err(e) => Err(e
            .to_fail(None)
            .hint("your policy must allow iam:CreateVirtualMFADevice on mfa/${aws:username}")),
    }
}

/// Shows the QR code, reads two consecutive codes and enables the device.
fn activate(
    aws: &AwsSts,
    args: &EnrollArgs,
    tty: &mut Tty,
    user: &str,
    account: &str,
    device: &Device,
    profile: &str,
) -> Result<String, Fail> {
    let issuer = "AWS";
    let uri = format!(
        "otpauth://totp/{issuer}:{user}@{account}?secret={}&issuer={issuer}",
        device.seed.expose()
    );
    let qr =
        qrcode::QrCode::new(uri.as_bytes()).map_err(|e| fail!("cannot draw the QR code: {e}"))?;
    let art = qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    crate::emit(&format!(
        "Scan this with your authenticator app (device {}):\n\n{art}\n\n",
        device.serial
    ));
    if let Some(path) = &args.qr_png {
        write_png(path, &qr)?;
        crate::emit(&format!(
            "QR code written to {} (readable by you only; delete it once scanned).\n",
            path.display()
        ));
    }
    if args.show_secret {
        crate::emit(&format!("Secret (base32): {}\n", device.seed.expose()));
    }
    let ask = Ask {
        profile,
        serial: &device.serial,
    };
    let first = tty.code(&ask, None)?;
    crate::emit("Now wait for the next code (a new one every 30 seconds) and enter it.\n");
    let mut retry = None;
    let second = loop {
        let c = tty.code(&ask, retry)?;
        if c != first {
            break c;
        }
        retry = Some("that is the same code; wait for the next one");
    };
    aws.enable_mfa_device(user, &device.serial, &first, &second)
        .map_err(|e| {
            e.to_fail(Some(&device.serial))
                .hint("the two codes must be consecutive codes of this device")
        })?;
    Ok(second)
}

/// Deletes the unused device after a failure, or says how to.
fn cleanup(aws: &AwsSts, serial: &str, e: Fail) -> Fail {
    match aws.delete_virtual_mfa_device(serial) {
        Ok(()) => e.hint(format!("the unused device {serial} was deleted again; run `stsmfa enroll` to start over")),
        Err(_) => e.hint(format!("the unused device could not be deleted; an admin can: aws iam delete-virtual-mfa-device --serial-number {serial}")),
    }
}

fn write_png(path: &Path, qr: &qrcode::QrCode) -> Result<(), Fail> {
    let width = qr.width();
    let scale = 8usize;
    let quiet = 4usize;
    let side = (width + 2 * quiet) * scale;
    let colors = qr.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            for dy in 0..scale {
                let row = (y * scale + dy) * side;
                pixels[row + x * scale..row + x * scale + scale].fill(0);
            }
        }
    }
    let file = open_private(path).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    let side32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| fail!("cannot write {}: {e}", path.display()))
}

/// Opens for writing with mode 0600 from the first byte.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(f)
}

fn ask_yes(question: &str) -> Result<bool, Fail> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| fail!("cannot ask on the terminal: {e}"))?;
    let _ = tty.write_all(question.as_bytes());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(tty), &mut line)
        .map_err(|e| fail!("cannot read the answer: {e}"))?;
    let a = line.trim().to_ascii_lowercase();
    Ok(a.is_empty() || a == "y" || a == "yes")
}

/// Adds `mfa_serial` to the profile in the AWS config file, after asking.
fn record_serial(args: &EnrollArgs, profile: &str, serial: &str) -> Result<(), Fail> {
    let path = config_path();
    let q = format!(
        "Add `mfa_serial = {serial}` to [{}] in {}? [Y/n] ",
        section_name(profile),
        path.display()
    );
    if !args.yes && !ask_yes(&q)? {
        crate::emit(&format!(
            "Left {} unchanged. Add this line to [{}] yourself:\nmfa_serial = {serial}\n",
            path.display(),
            section_name(profile)
        ));
        return Ok(());
    }
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail!("cannot read {}: {e}", path.display())),
    };
    let new = add_mfa_serial(old.as_deref().unwrap_or(""), profile, serial);
    write_atomically(&path, old.as_deref(), &new)?;
    crate::emit(&format!("Recorded mfa_serial in {}.\n", path.display()));
    Ok(())
}

fn config_path() -> PathBuf {
    let [config, _] = crate::profiles::config_files(&crate::real_env);
    config
}

fn section_name(profile: &str) -> String {
    if profile == "default" {
        "default".into()
    } else {
        format!("profile {profile}")
    }
}

/// Writes through a temporary file and a rename, keeping a backup of the old file.
fn write_atomically(path: &Path, old: Option<&str>, new: &str) -> Result<(), Fail> {
    let err = |e: std::io::Error| {
        fail!("cannot write {}: {e}", path.display())
            .hint("nothing was changed; add mfa_serial by hand")
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if let Some(old) = old {
        let backup = path.with_extension("stsmfa-backup");
        std::fs::write(&backup, old).map_err(err)?;
    }
    let tmp = path.with_extension("stsmfa-tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(new.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(err)?;
        if let Ok(meta) = std::fs::metadata(path) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// Returns `text` with `mfa_serial = serial` in the profile's section, every
/// other line kept as it was.
pub fn add_mfa_serial(text: &str, profile: &str, serial: &str) -> String {
    let header_matches = |line: &str| {
        let l = line.trim();
        let Some(inner) = l.strip_prefix('[').and_then(|r| r.split(']').next()) else {
            return false;
        };
        let words: Vec<&str> = inner.split_whitespace().collect();
        match words.as_slice() {
            ["profile", name] => *name == profile,
            [name] => *name == profile && profile == "default",
            _ => false,
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let new_line = format!("mfa_serial = {serial}");
    let Some(start) = lines.iter().position(|l| header_matches(l)) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out += &format!("[{}]\n{new_line}\n", section_name(profile));
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let existing = (start + 1..end).find(|&i| {
        let l = lines[i].trim_start();
        l.split('=')
            .next()
            .is_some_and(|k| k.trim() == "mfa_serial")
    });
    match existing {
        Some(i) => out[i] = new_line,
        None => {
            // After the section's last setting, before trailing blank lines.
            let mut at = end;
            while at > start + 1 && lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            out.insert(at, new_line);
        }
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::add_mfa_serial;

    #[test]
    fn adds_to_existing_section_keeping_everything_else() {
        let before = "# my config\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1 # keep\noutput = json\n\n[profile other]\nregion = x\n";
        let after = add_mfa_serial(before, "work", "arn:aws:iam::1:mfa/alice");
        assert_eq!(
            after,
            "# my config\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1 # keep\noutput = json\nmfa_serial = arn:aws:iam::1:mfa/alice\n\n[profile other]\nregion = x\n"
        );
    }

    #[test]
    fn replaces_an_old_serial_and_handles_default() {
        let before = "[default]\nmfa_serial = old\nregion = r\n";
        assert_eq!(
            add_mfa_serial(before, "default", "new"),
            "[default]\nmfa_serial = new\nregion = r\n"
        );
    }

    #[test]
    fn appends_a_missing_section() {
        assert_eq!(
            add_mfa_serial("", "work", "s"),
            "[profile work]\nmfa_serial = s\n"
        );
        assert_eq!(
            add_mfa_serial("[profile a]\nx = 1", "work", "s"),
            "[profile a]\nx = 1\n\n[profile work]\nmfa_serial = s\n"
        );
    }
}
