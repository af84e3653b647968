//! `enroll`: a new IAM user creates and enables their own virtual MFA device
//! with nothing but the self-service permissions of AWS's MFA policies.

use crate::aws::{AwsSts, ClientSettings};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use stsmfa_core::cli::{EnrollArgs, SessionOpts};
use stsmfa_core::codes::UsedCodes;
use stsmfa_core::config::{self, Settings};
use stsmfa_core::error::Fail;
use stsmfa_core::fail;
use stsmfa_core::profiles::edit::{add_mfa_serial, resolve_links, section_name, write_atomically};
use stsmfa_core::prompt::{Ask, CodeProvider, Tty, interrupt};
use stsmfa_core::sts::Sts;

pub fn enroll(args: &EnrollArgs) -> Result<u8, Fail> {
    let profiles = stsmfa_core::profiles::load_real()?;
    let opts = SessionOpts {
        region: args.region.clone(),
        mfa_serial: None,
        ..Default::default()
    };
    let settings = config::resolve(
        args.profile.as_deref(),
        &opts,
        &stsmfa_core::real_env,
        &profiles,
    )?;
    let profile = settings.profile.clone();
    let client = ClientSettings::new(&settings, crate::keys::resolve(&settings)?);
    let aws = AwsSts::new(&client)?;
    let mut term = Tty::open()?.ok_or_else(|| {
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

    // From here until the device is enabled, Ctrl-C, SIGTERM and SIGHUP
    // end the prompt instead of the process, so that the device is deleted
    // again: a device left created but not enabled blocks the next enroll.
    let (device, last_code) = {
        let _signals = interrupt::catch("enroll");
        let device = create_device(&aws, &user, &id.account)?;
        let activated = interrupt::check()
            .and_then(|()| activate(&aws, args, &mut term, &user, &id.account, &device, &profile));
        match activated {
            Ok(code) => (device, code),
            Err(e) => return Err(cleanup(&aws, &device.serial, e)),
        }
    };
    let serial = stsmfa_core::escape(&device.serial);
    interrupt::check().map_err(|e| {
        let section = section_name(&profile);
        e.hint(format!(
            "MFA device {serial} is enabled nevertheless; add `mfa_serial = {serial}` to [{section}] in ~/.aws/config"
        ))
    })?;
    stsmfa_core::emit(&format!(
        "\nMFA device {serial} is enabled for IAM user {}.\n",
        stsmfa_core::escape(&user)
    ));
    // The code just spent must not be sent again for the first session.
    UsedCodes::new(&settings.state_dir, &device.serial).record(&last_code, SystemTime::now());

    record_serial(args, &mut term, &profile, &device.serial)?;
    if !args.yes
        && term.yes(&format!(
            "Get a first session for profile {} now? [Y/n] ",
            stsmfa_core::escape(&profile)
        ))?
    {
        stsmfa_core::emit("The next code is needed (the ones just used cannot be used again).\n");
        let enabled = stsmfa_core::escape(&device.serial).into_owned();
        first_session(settings, device.serial, term).map_err(|e| {
            e.hint(format!(
                "the MFA device {enabled} is enabled all the same; `stsmfa credential-process {}` tries the first session again",
                stsmfa_core::escape(&profile)
            ))
        })?;
        let profile = stsmfa_core::escape(&profile);
        stsmfa_core::emit(&format!(
            "A session for {profile} is cached. Try: aws sts get-caller-identity --profile {profile}-mfa\n"
        ));
    } else {
        stsmfa_core::emit(&format!(
            "Next: `stsmfa credential-process {}` gets a session (see README for ~/.aws/config).\n",
            stsmfa_core::escape(&profile)
        ));
    }
    Ok(0)
}

/// Gets the first session in this process, through the session logic as
/// `credential-process` gets it, so that it is cached for the next call. The
/// code is asked on this terminal, whatever code source the profile names:
/// the device is minutes old, only the authenticator just set up knows it.
fn first_session(mut settings: Settings, serial: String, term: Tty) -> Result<(), Fail> {
    settings.mfa_serial = Some(serial);
    let mut term = Some(term);
    let mut provider = || -> Result<Box<dyn CodeProvider>, Fail> {
        let term = term
            .take()
            .ok_or_else(|| fail!("the terminal was already used up for this session"))?;
        Ok(Box::new(term))
    };
    crate::run::obtain(&settings, &mut provider).map(drop)
}

struct Device {
    serial: String,
    seed: stsmfa_core::secret::Secret<String>,
}

/// Creates `mfa/USER`, replacing an unused device left by an earlier try.
fn create_device(aws: &AwsSts, user: &str, account: &str) -> Result<Device, Fail> {
    match aws.create_virtual_mfa_device(user) {
        Ok((serial, seed)) => Ok(Device { serial, seed }),
        Err(stsmfa_core::sts::StsError::Other { code, .. }) if code == "EntityAlreadyExists" => {
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
    term: &mut Tty,
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
    stsmfa_core::emit(&format!(
        "Scan this with your authenticator app (device {}):\n\n{art}\n\n",
        stsmfa_core::escape(&device.serial)
    ));
    if let Some(path) = &args.qr_png {
        write_png(path, &qr)?;
        stsmfa_core::emit(&format!(
            "QR code written to {} (readable by you only; delete it once scanned).\n",
            stsmfa_core::escape(&path.display().to_string())
        ));
    }
    if args.show_secret {
        stsmfa_core::emit(&format!(
            "Secret (base32): {}\n",
            stsmfa_core::escape(device.seed.expose())
        ));
    }
    let ask = Ask {
        profile,
        serial: &device.serial,
    };
    let first = term.code(&ask, None)?;
    stsmfa_core::emit("Now wait for the next code (a new one every 30 seconds) and enter it.\n");
    let mut retry = None;
    let second = loop {
        let c = term.code(&ask, retry)?;
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

/// Deletes the unused device after a failure (or an interrupt), or says how to.
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

/// Adds `mfa_serial` to the profile in the AWS config file, after asking.
fn record_serial(
    args: &EnrollArgs,
    term: &mut Tty,
    profile: &str,
    serial: &str,
) -> Result<(), Fail> {
    let path = config_path();
    let section = section_name(profile);
    let shown_path = path.display().to_string();
    let (shown_serial, section, shown_path) = (
        stsmfa_core::escape(serial),
        stsmfa_core::escape(&section),
        stsmfa_core::escape(&shown_path),
    );
    let q = format!("Add `mfa_serial = {shown_serial}` to [{section}] in {shown_path}? [Y/n] ");
    if !args.yes && !term.yes(&q)? {
        stsmfa_core::emit(&format!(
            "Left {shown_path} unchanged. Add this line to [{section}] yourself:\nmfa_serial = {shown_serial}\n"
        ));
        return Ok(());
    }
    // A symlinked config (dotfiles) is edited where it lives; the link stays.
    let real = resolve_links(&path);
    let old = match std::fs::read_to_string(&real) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail!("cannot read {}: {e}", real.display())),
    };
    let new = add_mfa_serial(old.as_deref().unwrap_or(""), profile, serial);
    let backup = write_atomically(&real, old.as_deref(), &new)?;
    let mut done = format!("Recorded mfa_serial in {shown_path}");
    if real != path {
        done += &format!(" (in {}, which it links to)", real.display());
    }
    if let Some(b) = backup {
        done += &format!("; the old version is in {}", b.display());
    }
    stsmfa_core::emit(&format!("{}.\n", stsmfa_core::escape(&done)));
    Ok(())
}

fn config_path() -> PathBuf {
    let [config, _] = stsmfa_core::profiles::config_files(&stsmfa_core::real_env);
    config
}
