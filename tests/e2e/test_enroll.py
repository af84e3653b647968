"""Self-service MFA enrollment (issue 6): a new IAM user holding only the
self-service statements of AWS's MFA policy runs `stsmfa enroll` in a
terminal, reads the shown secret, types two consecutive codes, and ends with
an enabled device named after them, `mfa_serial` in ~/.aws/config (nothing
else touched, a backup kept), a private PNG of the QR code, and working
sessions. Also the failure paths: a device already there, wrong codes, no to
the config change, and no terminal at all."""

from __future__ import annotations

import configparser
import difflib
import json
import os
import re
import signal
import stat
import struct
import zlib

import pytest

from assertions import assert_error
from harness import sts_failed, sts_ok
from pty_driver import PtyProcess
from mfa_bed import policies
from mfa_bed.otp import code_for_step, step_at, totp

CONFIG_TEXT = """\
# my AWS config: every line of this file must survive enrollment
[default]
region = eu-west-1
output = json

[profile work]
# the new IAM user
region = us-east-1
cli_pager =

[profile other]
region = ap-southeast-2
; a semicolon comment
"""

SECRET_RE = r"Secret \(base32\): ([A-Z2-7]+=*)(?=\s)"
CODE_PROMPT = r"MFA code for profile work \(([^)]*)\): "
CONFIG_Q = r"Add `mfa_serial = (\S+)` to \[profile work\] in (.+?)\? \[Y/n\] "
SESSION_Q = r"Get a first session for profile work now\? \[Y/n\] "
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def newcomer(home, make_user):
    """A user with the self-service policy only and no MFA device, profile
    `work` with its keys (credentials file) and a hand-written config."""
    u = make_user(policy=policies.self_service_only(), mfa=False, prefix="new")
    home.add_source_profile("work", u, mfa_serial=False, mfa_process=False)
    home.config_path.write_text(CONFIG_TEXT)
    return u


def enroll(home, *args: str) -> PtyProcess:
    return PtyProcess([str(home.bin), "enroll", "work", *args], env=home._env({"TERM": "dumb"}), cwd=home.root)


def consecutive_codes(seed: str) -> tuple[str, str]:
    """Two consecutive codes that the bed (like IAM) takes for EnableMFADevice
    right now: the previous step's and the current one's."""
    now = step_at()
    return code_for_step(seed, now - 1), code_for_step(seed, now)


def wrong_codes(seed: str | None) -> tuple[str, str]:
    now = step_at()
    valid = {code_for_step(seed, now + d) for d in range(-4, 5)} if seed else set()
    picks = [c for c in ("%06d" % (n * 7919 % 1000000) for n in range(1, 50)) if c not in valid]
    return picks[0], picks[1]


def answer_codes(term: PtyProcess, serial_hint: str | None = None) -> tuple[str, str]:
    """Reads the secret, answers the two code prompts; returns (seed, serial)."""
    seed = term.expect(SECRET_RE, timeout=60).group(1)
    first, second = consecutive_codes(seed)
    serial = term.expect(CODE_PROMPT, timeout=30).group(1)
    term.sendline(first)
    assert term.expect(CODE_PROMPT, timeout=30).group(1) == serial
    term.sendline(second)
    return seed, serial


def only_added_line(before: str, after: str) -> list[str]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    removed = [d[2:] for d in diff if d.startswith("- ")]
    added = [d[2:] for d in diff if d.startswith("+ ")]
    assert removed == [], f"lines lost or changed: {removed}\n{after}"
    return added


def section_of_line(text: str, line: str) -> str | None:
    section = None
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip()
        elif ln == line:
            return section
    return None


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), data[:16]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h = struct.unpack(">II", data[16:24])
    crc = struct.unpack(">I", data[29:33])[0]
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == crc, "bad IHDR checksum"
    return w, h


def files_containing(root, needle: str) -> list[str]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                if needle.encode() in open(p, "rb").read():
                    hits.append(p)
            except OSError:
                pass
    return hits


# ---------------------------------------------------------------------------


def test_enroll_end_to_end(home, newcomer, bed):
    png = home.root / "qr" / "mfa.png"
    png.parent.mkdir()
    term = enroll(home, "--show-secret", "--qr-png", str(png))
    try:
        seed, serial = answer_codes(term)
        m = term.expect(CONFIG_Q, timeout=60)
        assert m.group(1) == serial and m.group(2) == str(home.config_path), m.group(0)
        term.sendline("y")
        term.expect(SESSION_Q, timeout=30)
        term.sendline("n")
        rc = term.wait(30)
    finally:
        term.close()
    out = term.text
    assert rc == 0, out

    # the device: enabled, named after the user
    assert serial.endswith(f":mfa/{newcomer.name}"), serial
    assert bed.mfa_devices(newcomer.name) == [{"serial": serial, "enabled": True}]

    # the config: one line more, in [profile work], everything else as it was
    after = home.config_path.read_text()
    assert only_added_line(CONFIG_TEXT, after) == [f"mfa_serial = {serial}"]
    assert section_of_line(after, f"mfa_serial = {serial}") == "profile work"
    cfg = configparser.RawConfigParser()
    cfg.read_string(after)
    assert cfg.get("profile work", "mfa_serial") == serial
    assert "mfa_serial" not in cfg["profile other"] and "mfa_serial" not in cfg["default"]
    backups = [p for p in home.aws_dir.iterdir() if p != home.config_path and p.read_text() == CONFIG_TEXT]
    assert backups, f"no backup of the old config in {sorted(os.listdir(home.aws_dir))}"
    assert not [p for p in home.aws_dir.iterdir() if "tmp" in p.name], "a temporary file was left behind"

    # the PNG: private, a real PNG
    assert png.is_file(), out
    assert stat.S_IMODE(png.stat().st_mode) == 0o600, oct(png.stat().st_mode)
    w, h = png_size(png.read_bytes())
    assert w == h and w >= 21 * 2

    # the secret was shown, and written nowhere
    assert seed in out
    assert files_containing(home.root, seed) == [], "the MFA secret was written to a file"

    # a session for the profile, with a fresh code (the two used for enabling are spent)
    cp = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": totp(seed, offset=1)})
    assert cp.returncode == 0, cp.stderr
    cred = json.loads(cp.stdout)
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True
    assert sts_ok(bed, newcomer) == 1


def test_enroll_with_yes_asks_no_question_and_refuses_a_repeated_code(home, newcomer, bed):
    term = enroll(home, "--yes", "--show-secret")
    try:
        seed = term.expect(SECRET_RE, timeout=60).group(1)
        first, second = consecutive_codes(seed)
        serial = term.expect(CODE_PROMPT, timeout=30).group(1)
        term.sendline(first)
        term.expect(CODE_PROMPT, timeout=30)
        term.sendline(first)  # the same code again: refused, asked again
        term.expect(r"same code", timeout=30)
        term.expect(CODE_PROMPT, timeout=30)
        term.sendline(second)
        rc = term.wait(60)
    finally:
        term.close()
    assert rc == 0, term.text
    assert "[Y/n]" not in term.text, term.text
    assert bed.mfa_devices(newcomer.name) == [{"serial": serial, "enabled": True}]
    assert only_added_line(CONFIG_TEXT, home.config_path.read_text()) == [f"mfa_serial = {serial}"]


def test_enroll_answer_no_keeps_the_config_and_first_session_yes_slow(home, newcomer, bed):
    """Takes up to 30 s: the first session needs the code after the two spent ones."""
    term = enroll(home, "--show-secret")
    try:
        seed, serial = answer_codes(term)
        term.expect(CONFIG_Q, timeout=60)
        term.sendline("n")
        m = term.expect(r"mfa_serial = (\S+)(?=\s)", timeout=30)  # the line to add by hand
        assert m.group(1) == serial
        term.expect(SESSION_Q, timeout=30)
        term.sendline("y")
        term.expect(CODE_PROMPT, timeout=60)  # after waiting for the next step
        term.sendline(totp(seed))
        rc = term.wait(60)
    finally:
        term.close()
    assert rc == 0, term.text
    assert home.config_path.read_text() == CONFIG_TEXT, "the config changed after answering no"
    assert bed.mfa_devices(newcomer.name) == [{"serial": serial, "enabled": True}]
    assert sts_ok(bed, newcomer) == 1 and sts_failed(bed, newcomer) == 0
    # that first session is cached: no code needed now
    cp = home.run("credential-process", "work", "--mfa-serial", serial)
    assert cp.returncode == 0, cp.stderr
    assert sts_ok(bed, newcomer) == 1


def test_enroll_refuses_a_user_who_already_has_a_device(home, make_user, bed):
    u = make_user(policy=policies.self_service_only(), mfa=True, prefix="has")
    home.add_source_profile("work", u, mfa_serial=False, mfa_process=False)
    home.config_path.write_text(CONFIG_TEXT)
    before = bed.virtual_devices()
    term = enroll(home, "--show-secret")
    try:
        rc = term.wait(60)
    finally:
        term.close()
    assert rc == 1, term.text
    assert "stsmfa: error:" in term.text and u.serial in term.text, term.text
    assert "Secret (base32)" not in term.text and "MFA code for" not in term.text
    assert bed.virtual_devices() == before, "a device was created"
    assert bed.mfa_devices(u.name) == [{"serial": u.serial, "enabled": True}]
    assert home.config_path.read_text() == CONFIG_TEXT


@pytest.mark.parametrize("policy_name", ["self_service_only", "allow_all"])
def test_enroll_with_wrong_codes_cleans_up_or_says_how(home, make_user, bed, policy_name):
    """self_service_only denies DeleteVirtualMFADevice without MFA (as on AWS):
    the message must then give the admin command; allow_all lets stsmfa delete it."""
    u = make_user(policy=getattr(policies, policy_name)(), mfa=False, prefix="wrong")
    home.add_source_profile("work", u, mfa_serial=False, mfa_process=False)
    home.config_path.write_text(CONFIG_TEXT)
    term = enroll(home)  # no --show-secret: the secret must not show
    try:
        serial = term.expect(CODE_PROMPT, timeout=60).group(1)
        a, b = wrong_codes(None)
        term.sendline(a)
        term.expect(CODE_PROMPT, timeout=30)
        term.sendline(b)
        rc = term.wait(60)
    finally:
        term.close()
    out = term.text
    assert rc == 1, out
    assert "stsmfa: error:" in out, out
    assert not re.search(r"[A-Z2-7]{32,}", out), "something like the base32 secret was printed without --show-secret"
    assert "Secret (base32)" not in out
    assert [d for d in bed.mfa_devices(u.name) if d["enabled"]] == []
    admin_cmd = f"aws iam delete-virtual-mfa-device --serial-number {serial}"
    left = serial in bed.virtual_devices()
    if policy_name == "allow_all":
        assert not left, f"the unused device was not deleted although the policy allows it:\n{out}"
    else:
        if left:
            assert admin_cmd in out, f"device {serial} left behind without the admin command:\n{out}"
    assert home.config_path.read_text() == CONFIG_TEXT

    if policy_name == "self_service_only" and left:
        # A second try meets the leftover (EntityAlreadyExists): explained the same way.
        again = enroll(home)
        try:
            rc2 = again.wait(60)
        finally:
            again.close()
        assert rc2 == 1, again.text
        assert "already exists" in again.text and admin_cmd in again.text, again.text


def test_enroll_without_a_terminal_is_a_clear_error(home, newcomer, bed):
    cp = home.run("enroll", "work", "--yes", timeout=30)
    assert_error(cp, "terminal", hint=True)
    assert bed.mfa_devices(newcomer.name) == []
    assert home.config_path.read_text() == CONFIG_TEXT


# ---------------------------------------------------------------------------
# Hardening (issue 11): the config file's link, mode and line endings, and an
# interrupted enrollment.


def enroll_with_yes(home) -> tuple[str, str]:
    """A whole enrollment with --yes; returns (serial, terminal text)."""
    term = enroll(home, "--yes", "--show-secret")
    try:
        _seed, serial = answer_codes(term)
        rc = term.wait(60)
    finally:
        term.close()
    assert rc == 0, term.text
    return serial, term.text


def test_enroll_edits_a_symlinked_config_through_the_link_and_keeps_its_mode(home, newcomer, bed):
    """A dotfiles manager links ~/.aws/config to a private file elsewhere."""
    real = home.root / "dotfiles" / "aws-config"
    real.parent.mkdir()
    real.write_text(CONFIG_TEXT)
    real.chmod(0o600)
    home.config_path.unlink()
    home.config_path.symlink_to(real)

    serial, out = enroll_with_yes(home)

    assert home.config_path.is_symlink(), "the link was replaced by a regular file"
    assert os.readlink(home.config_path) == str(real)
    assert only_added_line(CONFIG_TEXT, real.read_text()) == [f"mfa_serial = {serial}"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600, oct(real.stat().st_mode)
    backups = [p for p in [*real.parent.iterdir(), *home.aws_dir.iterdir()]
               if p.is_file() and not p.is_symlink() and p != real and p.read_text() == CONFIG_TEXT]
    assert backups, f"no backup in {sorted(map(str, real.parent.iterdir()))}\n{out}"
    for b in backups:
        assert stat.S_IMODE(b.stat().st_mode) == 0o600, f"backup {b} is {oct(b.stat().st_mode)}"
    assert not [p for p in real.parent.iterdir() if "tmp" in p.name], "a temporary file was left behind"
    assert bed.mfa_devices(newcomer.name) == [{"serial": serial, "enabled": True}]


def test_enroll_backup_has_the_mode_of_a_private_config(home, newcomer, bed):
    home.config_path.chmod(0o600)
    serial, out = enroll_with_yes(home)
    backup = home.aws_dir / "config.stsmfa-backup"
    assert backup.read_text() == CONFIG_TEXT, out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600, oct(backup.stat().st_mode)
    assert stat.S_IMODE(home.config_path.stat().st_mode) == 0o600
    assert only_added_line(CONFIG_TEXT, home.config_path.read_text()) == [f"mfa_serial = {serial}"]


def test_enroll_keeps_crlf_line_endings(home, newcomer, bed):
    crlf = CONFIG_TEXT.replace("\n", "\r\n").encode()
    home.config_path.write_bytes(crlf)
    serial, _ = enroll_with_yes(home)
    after = home.config_path.read_bytes()
    assert b"\n" not in after.replace(b"\r\n", b""), f"LF-only lines in {after!r}"
    assert only_added_line(CONFIG_TEXT, after.decode().replace("\r\n", "\n")) == [f"mfa_serial = {serial}"]
    assert (home.aws_dir / "config.stsmfa-backup").read_bytes() == crlf


@pytest.mark.parametrize("how,exit_code", [("ctrl-c", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_enroll_interrupted_at_the_code_prompt_deletes_the_device(home, make_user, bed, how, exit_code):
    """A device created but never enabled would block the next enroll."""
    u = make_user(policy=policies.allow_all(), mfa=False, prefix="intr")
    home.add_source_profile("work", u, mfa_serial=False, mfa_process=False)
    home.config_path.write_text(CONFIG_TEXT)
    term = enroll(home)
    try:
        serial = term.expect(CODE_PROMPT, timeout=60).group(1)
        assert serial in bed.virtual_devices()
        if how == "ctrl-c":
            term.send("\x03")  # SIGINT to the terminal's foreground group
        else:
            os.kill(term.pid, getattr(signal, how))
        rc = term.wait(60)
    finally:
        term.close()
    out = term.text
    assert rc == exit_code, out
    assert "stsmfa: error:" in out and "interrupted" in out, out
    assert serial not in bed.virtual_devices(), f"device {serial} left behind:\n{out}"
    assert "deleted" in out, out
    assert bed.mfa_devices(u.name) == []
    assert home.config_path.read_text() == CONFIG_TEXT

    again, _ = enroll_with_yes(home)
    assert bed.mfa_devices(u.name) == [{"serial": again, "enabled": True}]


# ---------------------------------------------------------------------------
# The first session after enrolling is got by enroll itself, through the
# session logic: cached as credential-process caches it, no second process.


def processes_where(field: int, value: int) -> list[tuple[int, str]]:
    """(pid, name) of the processes whose /proc/PID/stat field number `field`
    (after the name: 0 state, 1 ppid, 2 pgrp, 3 session) is `value`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                st = f.read()
        except OSError:
            continue  # ended meanwhile
        # The name may hold spaces and parentheses: the fields follow the last ')'.
        fields = st[st.rindex(")") + 2 :].split()
        if int(fields[field]) == value:
            found.append((int(entry), st[st.index("(") + 1 : st.rindex(")")]))
    return found


def children_of(pid: int) -> list[tuple[int, str]]:
    return processes_where(1, pid)


def in_session(sid: int) -> list[tuple[int, str]]:
    return processes_where(3, sid)


def own_stats(bed, user) -> dict[str, int]:
    return {kind: per_caller.get(user.name, 0) for kind, per_caller in bed.stats().items()}


def test_enroll_first_session_is_got_in_process_and_is_a_cache_hit_for_credential_process_slow(home, newcomer, bed):
    """Takes up to 30 s: the first session needs the code after the two spent ones."""
    term = PtyProcess([str(home.bin), "-v", "enroll", "work", "--show-secret"],
                      env=home._env({"TERM": "dumb"}), cwd=home.root)
    try:
        seed, serial = answer_codes(term)
        term.expect(CONFIG_Q, timeout=60)
        term.sendline("y")
        term.expect(SESSION_Q, timeout=30)
        term.sendline("y")
        term.expect(CODE_PROMPT, timeout=60)  # after waiting for the next step
        # enroll itself asks: no other stsmfa process was started for it
        assert children_of(term.pid) == [], term.text
        term.sendline(totp(seed))
        rc = term.wait(60)
        left = in_session(term.pid)
    finally:
        term.close()
    out = term.text
    assert rc == 0, out
    assert left == [], f"processes of the enroll terminal still running: {left}"
    assert "A session for work is cached. Try: aws sts get-caller-identity --profile work-mfa" in out, out
    # -v reached the session logic, so it ran in the enroll process (a child got no -v) ...
    assert re.search(r"stsmfa: new session \S+ stored in ", out), out
    # ... and stsmfa handed over once, to stsmfa-sts for enroll itself
    assert out.count("handing over to ") == 1, out
    assert sts_ok(bed, newcomer) == 1 and sts_failed(bed, newcomer) == 0
    assert [s["profile"] for s in home.status() if s.get("mfa_serial") == serial] == ["work"]

    # credential-process now: a cache hit, served by the small binary, no code asked, no STS call
    before = own_stats(bed, newcomer)
    cp = home.run("-v", "credential-process", "work", timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert "cache hit" in cp.stderr, cp.stderr
    assert "handing over" not in cp.stderr and "MFA code" not in cp.stderr, cp.stderr
    assert own_stats(bed, newcomer) == before
    cred = json.loads(cp.stdout)
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True
    assert bed.session_info(cred["AccessKeyId"])["user"] == newcomer.name


def test_enroll_ctrl_c_at_the_first_session_question_leaves_nothing_half_done(home, newcomer, bed):
    term = enroll(home, "--show-secret")
    try:
        seed, serial = answer_codes(term)
        term.expect(CONFIG_Q, timeout=60)
        term.sendline("y")
        term.expect(SESSION_Q, timeout=30)
        term.send("\x03")  # SIGINT to the terminal's foreground group
        rc = term.wait(30)
        left = in_session(term.pid)
    finally:
        term.close()
    out = term.text
    assert rc in (-signal.SIGINT, 130), out
    assert left == [], f"processes of the enroll terminal still running: {left}"
    # the enrollment itself is whole: the device enabled, the config line written once
    assert bed.mfa_devices(newcomer.name) == [{"serial": serial, "enabled": True}]
    assert only_added_line(CONFIG_TEXT, home.config_path.read_text()) == [f"mfa_serial = {serial}"]
    assert not [p for p in home.aws_dir.iterdir() if "tmp" in p.name], "a temporary file was left behind"
    # no session was asked for, none is cached
    assert own_stats(bed, newcomer) == {k: 0 for k in own_stats(bed, newcomer)}
    assert [s for s in home.status() if s.get("mfa_serial") == serial] == []
    # and the next call gets one at once: no lock left held, the serial taken from the config
    cp = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": totp(seed, offset=1)}, timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert bed.session_info(json.loads(cp.stdout)["AccessKeyId"])["mfa"] is True
    assert sts_ok(bed, newcomer) == 1
