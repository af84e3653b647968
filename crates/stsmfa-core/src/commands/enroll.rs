//! `enroll`: a new IAM user creates and enables their own virtual MFA device
//! with nothing but the self-service permissions of AWS's MFA policies.

use crate::cli::{EnrollArgs, SessionOpts};
use crate::codes::UsedCodes;
use crate::config;
use crate::error::Fail;
use crate::fail;
use crate::prompt::parse_code;
use crate::sts::{AwsSts, ClientSettings, Sts};
use std::fs::File;
use std::io::{Read, Write};
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
    let mut term = Terminal::open().ok_or_else(|| {
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
        let _signals = interrupt::catch();
        let device = create_device(&aws, &user, &id.account)?;
        let activated = interrupted()
            .and_then(|()| activate(&aws, args, &mut term, &user, &id.account, &device, &profile));
        match activated {
            Ok(code) => (device, code),
            Err(e) => return Err(cleanup(&aws, &device.serial, e)),
        }
    };
    let serial = crate::escape(&device.serial);
    interrupted().map_err(|e| {
        let section = section_name(&profile);
        e.hint(format!(
            "MFA device {serial} is enabled nevertheless; add `mfa_serial = {serial}` to [{section}] in ~/.aws/config"
        ))
    })?;
    crate::emit(&format!(
        "\nMFA device {serial} is enabled for IAM user {}.\n",
        crate::escape(&user)
    ));
    // The code just spent must not be sent again for the first session.
    UsedCodes::new(&settings.state_dir, &device.serial).record(&last_code, SystemTime::now());

    record_serial(args, &mut term, &profile, &device.serial)?;
    if !args.yes
        && term.yes(&format!(
            "Get a first session for profile {} now? [Y/n] ",
            crate::escape(&profile)
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
            let profile = crate::escape(&profile);
            crate::emit(&format!(
                "A session for {profile} is cached. Try: aws sts get-caller-identity --profile {profile}-mfa\n"
            ));
        }
    } else {
        crate::emit(&format!(
            "Next: `stsmfa credential-process {}` gets a session (see README for ~/.aws/config).\n",
            crate::escape(&profile)
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
    term: &mut Terminal,
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
        crate::escape(&device.serial)
    ));
    if let Some(path) = &args.qr_png {
        write_png(path, &qr)?;
        crate::emit(&format!(
            "QR code written to {} (readable by you only; delete it once scanned).\n",
            crate::escape(&path.display().to_string())
        ));
    }
    if args.show_secret {
        crate::emit(&format!(
            "Secret (base32): {}\n",
            crate::escape(device.seed.expose())
        ));
    }
    let first = term.code(profile, &device.serial, None)?;
    crate::emit("Now wait for the next code (a new one every 30 seconds) and enter it.\n");
    let mut retry = None;
    let second = loop {
        let c = term.code(profile, &device.serial, retry)?;
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

/// How many malformed codes before giving up (as the session prompt does).
const MAX_MALFORMED: usize = 3;

/// The terminal enroll asks on. It reads for itself rather than through the
/// session prompt: a read that a signal interrupts must end the prompt (std's
/// `read_line` would retry it), so that the half-made device is deleted.
struct Terminal {
    input: File,
    output: File,
}

impl Terminal {
    fn open() -> Option<Terminal> {
        let (input, output) = if cfg!(windows) {
            ("CONIN$", "CONOUT$")
        } else {
            ("/dev/tty", "/dev/tty")
        };
        Some(Terminal {
            input: std::fs::OpenOptions::new().read(true).open(input).ok()?,
            output: std::fs::OpenOptions::new().write(true).open(output).ok()?,
        })
    }

    fn say(&mut self, text: &str) {
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.flush();
    }

    /// One line without its ending; `None` at the end of input. A caught
    /// signal ends it with the interrupt's `Fail`.
    fn line(&mut self) -> Result<Option<String>, Fail> {
        let mut bytes = Vec::new();
        loop {
            if let Err(e) = interrupted() {
                self.say("\n");
                return Err(e);
            }
            if !interrupt::readable(&self.input) {
                continue;
            }
            let mut b = [0u8; 1];
            match self.input.read(&mut b) {
                Ok(0) if bytes.is_empty() => return Ok(None),
                Ok(0) => break,
                Ok(_) if b[0] == b'\n' => break,
                Ok(_) => bytes.push(b[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail!("cannot read from the terminal: {e}")),
            }
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// A 6-digit code for the device; `retry` says why the last one was not taken.
    fn code(&mut self, profile: &str, serial: &str, retry: Option<&str>) -> Result<String, Fail> {
        if let Some(why) = retry {
            self.say(&format!("stsmfa: {}\n", crate::escape(why)));
        }
        for _ in 0..MAX_MALFORMED {
            self.say(&format!(
                "MFA code for profile {} ({}): ",
                crate::escape(profile),
                crate::escape(serial)
            ));
            let Some(line) = self.line()? else {
                self.say("\n");
                return Err(fail!("no MFA code entered")
                    .hint("run the command again and type the 6-digit code"));
            };
            if let Some(code) = parse_code(&line) {
                return Ok(code);
            }
            self.say("stsmfa: a code is exactly 6 digits; try again\n");
        }
        Err(fail!("no valid MFA code after {MAX_MALFORMED} tries")
            .hint("type the 6 digits your authenticator shows"))
    }

    /// Yes unless the answer is no (Enter is yes).
    fn yes(&mut self, question: &str) -> Result<bool, Fail> {
        self.say(question);
        let a = self.line()?.unwrap_or_default().trim().to_ascii_lowercase();
        Ok(a.is_empty() || a == "y" || a == "yes")
    }
}

/// The interrupt's failure once Ctrl-C, SIGTERM or SIGHUP arrived: exit
/// 128 + the signal, as if it had ended the process.
fn interrupted() -> Result<(), Fail> {
    match interrupt::caught() {
        None => Ok(()),
        Some((number, name)) => Err(Fail {
            code: 128u8.saturating_add(number),
            ..fail!("enroll was interrupted ({name})")
        }),
    }
}

/// Catching the signals that would end enroll between creating and
/// enabling the device.
#[cfg(unix)]
mod interrupt {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    static CAUGHT: AtomicI32 = AtomicI32::new(0);
    const SIGNALS: [(libc::c_int, &str); 3] = [
        (libc::SIGINT, "Ctrl-C"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ];

    extern "C" fn note(sig: libc::c_int) {
        CAUGHT.store(sig, Ordering::SeqCst);
    }

    /// Holds the handlers; dropping it puts the old ones back.
    pub struct Catch(Vec<(libc::c_int, libc::sigaction)>);

    /// Notes the signals instead of dying of them. Without SA_RESTART, so that
    /// a blocked read returns EINTR. A signal ignored on entry (nohup) stays
    /// ignored.
    pub fn catch() -> Catch {
        let mut old = Vec::new();
        for (sig, _) in SIGNALS {
            // SAFETY: the handler only stores to an atomic (async-signal-safe);
            // the structs are plain C data, zeroed as sigaction(2) allows.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = 0;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) != 0 {
                    continue;
                }
                if prev.sa_sigaction == libc::SIG_IGN {
                    libc::sigaction(sig, &prev, std::ptr::null_mut());
                    continue;
                }
                old.push((sig, prev));
            }
        }
        Catch(old)
    }

    impl Drop for Catch {
        fn drop(&mut self) {
            for (sig, prev) in &self.0 {
                // SAFETY: puts back what sigaction(2) returned for this signal.
                unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
            }
        }
    }

    /// The caught signal's number and name.
    pub fn caught() -> Option<(u8, &'static str)> {
        let sig = CAUGHT.load(Ordering::SeqCst);
        SIGNALS
            .iter()
            .find(|(s, _)| *s == sig)
            .map(|(s, name)| (u8::try_from(*s).unwrap_or(127), *name))
    }

    /// Waits up to 250 ms for input. The timeout covers a signal that lands
    /// between the check for it and the blocking call.
    pub fn readable(f: &std::fs::File) -> bool {
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, 250) };
        // On an error other than EINTR the read says what is wrong.
        n > 0
            || (n < 0
                && !std::io::Error::last_os_error()
                    .kind()
                    .eq(&std::io::ErrorKind::Interrupted))
    }
}

#[cfg(not(unix))]
mod interrupt {
    pub struct Catch;
    pub fn catch() -> Catch {
        Catch
    }
    pub fn caught() -> Option<(u8, &'static str)> {
        None
    }
    pub fn readable(_: &std::fs::File) -> bool {
        true
    }
}

/// Adds `mfa_serial` to the profile in the AWS config file, after asking.
fn record_serial(
    args: &EnrollArgs,
    term: &mut Terminal,
    profile: &str,
    serial: &str,
) -> Result<(), Fail> {
    let path = config_path();
    let section = section_name(profile);
    let shown_path = path.display().to_string();
    let (shown_serial, section, shown_path) = (
        crate::escape(serial),
        crate::escape(&section),
        crate::escape(&shown_path),
    );
    let q = format!("Add `mfa_serial = {shown_serial}` to [{section}] in {shown_path}? [Y/n] ");
    if !args.yes && !term.yes(&q)? {
        crate::emit(&format!(
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
    crate::emit(&format!("{}.\n", crate::escape(&done)));
    Ok(())
}

/// The file `path` names, through any chain of symlinks (a dangling link
/// too: its target is where the file is created).
fn resolve_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // As many links as the kernel follows (ELOOP past that).
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = p
                    .parent()
                    .map_or_else(|| target.clone(), |d| d.join(&target))
            }
            Err(_) => break,
        }
    }
    p
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

/// `config` → `config.stsmfa-backup`, next to it.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes through a temporary file and a rename, keeping a backup of the old
/// file. Both are created 0600 and then given the old file's mode, so that no
/// moment exists when a private config is readable by others. Returns the
/// backup's path.
fn write_atomically(path: &Path, old: Option<&str>, new: &str) -> Result<Option<PathBuf>, Fail> {
    let err = |e: std::io::Error| {
        fail!("cannot write {}: {e}", path.display())
            .hint("nothing was changed; add mfa_serial by hand")
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let write = |to: &Path, text: &str| -> std::io::Result<()> {
        // A fresh file, so that an old one's looser mode is not kept.
        match std::fs::remove_file(to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(to)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Some(mode) = &mode {
            std::fs::set_permissions(to, mode.clone())?;
        }
        Ok(())
    };
    let backup = match old {
        Some(old) => {
            let backup = sibling(path, ".stsmfa-backup");
            write(&backup, old).map_err(err)?;
            Some(backup)
        }
        None => None,
    };
    let tmp = sibling(path, ".stsmfa-tmp");
    write(&tmp, new)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })?;
    Ok(backup)
}

/// Returns `text` with `mfa_serial = serial` in the profile's section, every
/// other line kept as it was, line endings included (a file with CRLF lines
/// gets a CRLF line).
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
    // The file's own line ending: that of its first line.
    let eol = match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    };
    // Each line with its ending, so that untouched lines are copied byte for byte.
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let content = |l: &str| -> String {
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l).to_owned()
    };
    let new_line = format!("mfa_serial = {serial}");
    let Some(start) = lines.iter().position(|l| header_matches(&content(l))) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        if !out.is_empty() {
            out.push_str(eol);
        }
        out += &format!("[{}]{eol}{new_line}{eol}", section_name(profile));
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| content(l).trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    let existing = (start + 1..end).find(|&i| {
        content(&lines[i])
            .trim_start()
            .split('=')
            .next()
            .is_some_and(|k| k.trim() == "mfa_serial")
    });
    match existing {
        Some(i) => {
            let ending = &lines[i][content(&lines[i]).len()..];
            lines[i] = format!("{new_line}{ending}");
        }
        None => {
            // After the section's last setting, before trailing blank lines.
            let mut at = end;
            while at > start + 1 && content(&lines[at - 1]).trim().is_empty() {
                at -= 1;
            }
            if lines[at - 1].ends_with('\n') {
                lines.insert(at, format!("{new_line}{eol}"));
            } else {
                // The file's last line, without an ending: so is the new one.
                lines[at - 1].push_str(eol);
                lines.insert(at, new_line);
            }
        }
    }
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_crlf_line_endings() {
        let before =
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nregion = x\r\n\r\n[profile b]\r\n";
        assert_eq!(
            add_mfa_serial(before, "work", "s"),
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nregion = x\r\nmfa_serial = s\r\n\r\n[profile b]\r\n"
        );
        assert_eq!(
            add_mfa_serial("[profile work]\r\nmfa_serial = old\r\n", "work", "s"),
            "[profile work]\r\nmfa_serial = s\r\n"
        );
        assert_eq!(
            add_mfa_serial("[default]\r\nregion = r", "work", "s"),
            "[default]\r\nregion = r\r\n\r\n[profile work]\r\nmfa_serial = s\r\n"
        );
        assert_eq!(
            add_mfa_serial("[profile work]\r\nregion = r", "work", "s"),
            "[profile work]\r\nregion = r\r\nmfa_serial = s"
        );
    }

    /// A scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stsmfa-enroll-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[cfg(unix)]
    #[test]
    fn backup_and_new_file_keep_the_old_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let config = dir.join("config");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for want in [0o600, 0o640] {
            std::fs::write(&config, "old\n").unwrap();
            std::fs::set_permissions(&config, PermissionsExt::from_mode(want)).unwrap();
            // A leftover backup that anyone may read must not stay so.
            std::fs::write(dir.join("config.stsmfa-backup"), "x").unwrap();
            std::fs::set_permissions(
                dir.join("config.stsmfa-backup"),
                PermissionsExt::from_mode(0o644),
            )
            .unwrap();
            let backup = write_atomically(&config, Some("old\n"), "new\n")
                .unwrap()
                .unwrap();
            assert_eq!(backup, dir.join("config.stsmfa-backup"));
            assert_eq!(std::fs::read_to_string(&backup).unwrap(), "old\n");
            assert_eq!(std::fs::read_to_string(&config).unwrap(), "new\n");
            assert_eq!(mode(&backup), want);
            assert_eq!(mode(&config), want);
        }
        // No old file: the new one is private.
        let fresh = dir.join("sub").join("config");
        assert_eq!(write_atomically(&fresh, None, "new\n").unwrap(), None);
        assert_eq!(mode(&fresh), 0o600);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().contains("tmp")),
            "{left:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_to_the_file() {
        let dir = scratch("links");
        std::fs::create_dir_all(dir.join("dotfiles")).unwrap();
        std::fs::write(dir.join("dotfiles/aws-config"), "[default]\n").unwrap();
        std::os::unix::fs::symlink("dotfiles/aws-config", dir.join("hop")).unwrap();
        std::os::unix::fs::symlink(dir.join("hop"), dir.join("config")).unwrap();
        let real = resolve_links(&dir.join("config"));
        assert_eq!(
            std::fs::canonicalize(&real).unwrap(),
            std::fs::canonicalize(dir.join("dotfiles/aws-config")).unwrap()
        );
        assert_eq!(
            resolve_links(&dir.join("dotfiles/aws-config")),
            dir.join("dotfiles/aws-config")
        );
        // A dangling link names where the file is to be created.
        std::os::unix::fs::symlink("nowhere/config", dir.join("dangling")).unwrap();
        assert_eq!(
            resolve_links(&dir.join("dangling")),
            dir.join("nowhere/config")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
