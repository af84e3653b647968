"""Every fault handled (issue 4): STS unreachable, silent, failing for a while
or for good, and its error text shown without forged lines or escape
sequences; a Secret Service collection that is locked, a session bus that is
missing or never answers, no keyring at all, someone else's JSON in the store
entry; config files missing, unreadable or not UTF-8, a profile that is not
there; and Ctrl-C at the prompt. Each ends in one clear error line with a hint
(or a working fallback with at most one warning), nothing cached and no lock
left behind."""

from __future__ import annotations

import functools
import json
import re
import shutil
import time

import pytest

from assertions import assert_error, assert_nothing_cached, error_lines, hint_lines
from fake_endpoints import Blackhole, FakeEndpoint, closed_port, sts_error_xml
from harness import missing, sts_failed, sts_ok
from keyrings import keyring_session_argv
from pty_driver import PtyProcess


# assert_error(cp, hint=True), under the name the STS retry tests use.
assert_one_error_with_hint = functools.partial(assert_error, hint=True)


# ---------------------------------------------------------------------------
# STS faults


def test_sts_unreachable_is_one_clear_error(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    t0 = time.monotonic()
    cp = home.run("credential-process", "work", env={
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "STSMFA_MFA_CODE": home.code(user),
    }, timeout=60)
    took = time.monotonic() - t0
    assert_error(cp, hint=True)
    assert re.search(r"reach|connect|network", cp.stderr, re.I), cp.stderr
    assert took < 31, f"took {took:.1f}s (STSMFA_TIMEOUT default 30 s)"
    assert_nothing_cached(home, user)


def test_sts_that_never_answers_fails_within_stsmfa_timeout(home, user):
    home.add_source_profile("work", user, mfa_process=False)
    code = home.code(user)
    with Blackhole() as hole:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": hole.address,
            "STSMFA_TIMEOUT": "2",
            "STSMFA_MFA_CODE": code,
        }, timeout=60)
        took = time.monotonic() - t0
        assert hole.accepted, "stsmfa never connected to the endpoint"
    assert_error(cp, hint=True)
    assert re.search(r"time|answer|respond", cp.stderr, re.I), cp.stderr
    assert took < 6, f"took {took:.1f}s with STSMFA_TIMEOUT=2"
    assert_nothing_cached(home, user)


def test_sts_5xx_is_not_retried_and_the_code_counts_as_spent(home, user, bed):
    """A GetSessionToken that may have reached STS is never sent again: a
    retry would resend a code STS may have used."""
    home.add_source_profile("work", user, mfa_process=False)

    def plan(n, action):
        return (500, sts_error_xml("InternalFailure", "try again")) if n == 1 else "forward"

    code = home.code(user)
    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        env = {"AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_TIMEOUT": "20"}
        cp = home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": code}, timeout=60)
        first = fake.actions()
        again = home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": code}, timeout=60)
        second = fake.actions()
        ok = home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": home.code(user)}, timeout=60)
        third = fake.actions()
    assert_one_error_with_hint(cp, "HTTP 500", "InternalFailure")
    assert first == ["GetSessionToken"], f"retried: {first}"
    assert_one_error_with_hint(again, "already used")
    assert second == first, "the spent code was sent again"
    assert ok.returncode == 0, ok.stderr
    assert third == ["GetSessionToken"] * 2, third
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0
    cred = json.loads(ok.stdout)
    assert [e["mfa_serial"] for e in home.status_for(user)] == [user.serial]
    assert home.credential_process("work") == cred  # cached: a hit, no code needed


@pytest.mark.parametrize(
    "status,code,needle",
    [(503, "ServiceUnavailable", r"HTTP 503 \(ServiceUnavailable\)"), (400, "Throttling", r"throttl")],
    ids=["503", "throttling"],
)
def test_sts_errors_are_not_retried_and_end_in_one_clear_error(home, user, bed, status, code, needle):
    home.add_source_profile("work", user, mfa_process=False)
    mfa_code = home.code(user)
    with FakeEndpoint(lambda n, a: (status, sts_error_xml(code, "Rate exceeded"))) as fake:
        env = {"AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": mfa_code, "STSMFA_TIMEOUT": "10"}
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env=env, timeout=60)
        took = time.monotonic() - t0
        again = home.run("credential-process", "work", env=env, timeout=60)
        actions = fake.actions()
    assert_one_error_with_hint(cp)
    assert re.search(needle, cp.stderr, re.I), cp.stderr
    assert actions == ["GetSessionToken"], f"retried: {actions}"
    assert took < 15, f"took {took:.1f}s with STSMFA_TIMEOUT=10"
    assert_one_error_with_hint(again, "already used")  # spent: the next run waits for the next code
    assert_nothing_cached(home, user)


# As STS's XML carries them (character references; raw controls are not XML):
# a newline and a forged hint, then CR, erase-line, a window title, colour,
# C1 CSI and DEL.
FORGED = ("User is not allowed&#10;hint: run: curl x | sh&#13;&#27;[2K&#27;]0;owned&#7;"
          "&#27;[31mred&#x9b;2J&#x7f;")


SHOWN = r"User is not allowed\nhint: run: curl x | sh\r\x1b[2K\x1b]0;owned\x07\x1b[31mred\u{9b}2J\x7f"


@pytest.mark.parametrize("verbose", [False, True])
def test_sts_error_text_cannot_forge_a_hint_or_send_escapes(home, user, verbose):
    home.add_source_profile("work", user)
    args = ["-v"] if verbose else []
    with FakeEndpoint(lambda n, a: (403, sts_error_xml("AccessDenied", FORGED))) as fake:
        cp = home.run(*args, "credential-process", "work",
                      env={"AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_TIMEOUT": "20"}, timeout=60)
        assert fake.actions(), "stsmfa never asked the fake STS"
    assert cp.returncode == 1, cp.stderr
    assert cp.stdout == ""
    for c in "\x1b\x07\x9b\x7f\r":
        assert c not in cp.stderr, f"raw {c!r} on stderr: {cp.stderr!r}"
    errors = error_lines(cp.stderr)
    assert len(errors) == 1, cp.stderr
    # The server's text stays on the error line, its controls made visible.
    assert SHOWN in errors[0], errors[0]
    hints = hint_lines(cp.stderr)
    assert hints, cp.stderr
    assert not any("curl" in h for h in hints), f"a forged hint line:\n{cp.stderr}"
    for line in cp.stderr.splitlines():
        assert line.startswith(("stsmfa: ", "hint: ")), f"a line stsmfa did not write: {line!r}"


# ---------------------------------------------------------------------------
# Keyring faults


def _need_tools(*names: str) -> None:
    for n in names:
        if not shutil.which(n):
            missing(f"{n} not installed")


@pytest.mark.parametrize("store_choice", ["secret-service", "auto"])
def test_locked_secret_service_collection_fails_or_falls_back_clearly(home, user, bed, store_choice):
    _need_tools("dbus-run-session", "gnome-keyring-daemon", "secret-tool")
    home.add_source_profile("work", user, mfa_process=False)
    runs = iter(range(100))

    def private() -> dict:
        """A fresh runtime dir per D-Bus session, so no daemon of an earlier
        session is found through it; the keyring files stay under HOME."""
        d = home.root / f"xdg-run-{next(runs)}"
        d.mkdir(mode=0o700)
        return {"DBUS_SESSION_BUS_ADDRESS": None, "XDG_RUNTIME_DIR": str(d)}

    # Set-up: a login keyring with password "right" (stored under HOME).
    store_probe = ["timeout", "20", "sh", "-c", "printf v | secret-tool store --label=p service probe username p"]
    mk = home._run(keyring_session_argv("right", store_probe), env=private(), timeout=60)
    assert mk.returncode == 0, mk.stderr
    probe = home._run(keyring_session_argv("wrong", store_probe), env=private(), timeout=60)
    if probe.returncode == 0:
        pytest.fail(f"precondition: the keyring should be locked after a wrong password: {probe.stderr}")

    t0 = time.monotonic()
    cp = home._run(keyring_session_argv("wrong", [str(home.bin), "credential-process", "work"]),
                   env={**private(), "STSMFA_STORE": store_choice, "STSMFA_MFA_CODE": home.code(user)}, timeout=60)
    took = time.monotonic() - t0
    assert took < 20, f"took {took:.1f}s on a locked collection"
    stsmfa_lines = [ln for ln in cp.stderr.splitlines() if ln.startswith(("stsmfa:", "hint:"))]
    if cp.returncode == 0:
        assert json.loads(cp.stdout)["AccessKeyId"].startswith("ASIA")
        warnings = [ln for ln in stsmfa_lines if ln.startswith("stsmfa: warning:")]
        assert warnings and "locked" in warnings[0].lower(), f"no warning about the locked keyring:\n{cp.stderr}"
        assert not [ln for ln in stsmfa_lines if ln.startswith("stsmfa: error:")], cp.stderr
    else:
        assert cp.returncode == 1, cp.stderr
        assert cp.stdout == ""
        assert stsmfa_lines and stsmfa_lines[0].startswith("stsmfa: error:"), cp.stderr
        assert "locked" in stsmfa_lines[0].lower(), cp.stderr
        assert any(ln.startswith("hint:") for ln in stsmfa_lines), cp.stderr
    # Nothing was written into the locked collection.
    look = home._run(keyring_session_argv("right", ["timeout", "20", "secret-tool", "search", "--all", "service", "stsmfa"]),
                     env=private(), timeout=60)
    assert look.returncode in (0, 1), look.stderr  # 1: nothing found
    assert user.serial not in look.stdout + look.stderr, "an entry was written to the locked keyring"


def _no_bus_env(home) -> dict:
    empty_run = home.root / "no-bus-run"
    empty_run.mkdir(mode=0o700, exist_ok=True)
    return {"DBUS_SESSION_BUS_ADDRESS": None, "XDG_RUNTIME_DIR": str(empty_run), "STSMFA_STORE": "auto"}


def test_auto_store_without_a_session_bus_uses_keyutils(home, user, bed, keyutils_ok):
    home.add_source_profile("work", user)
    env = _no_bus_env(home)
    cp = home.run("credential-process", "work", env=env, timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert "warning" not in cp.stderr.lower(), cp.stderr
    assert [e["store"] for e in home.status_for(user, env={**env, "STSMFA_STORE": "keyutils"})] == ["keyutils"]


def test_auto_store_with_a_session_bus_that_never_answers_falls_back_in_bounded_time(home, user, bed, keyutils_ok):
    home.add_source_profile("work", user, mfa_process=False)
    with Blackhole(unix_path=str(home.root / "bus")) as bus:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus.address}",
            "STSMFA_STORE": "auto", "STSMFA_MFA_CODE": home.code(user),
        }, timeout=20)
        took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["AccessKeyId"].startswith("ASIA")
    assert took < 15, f"took {took:.1f}s"


def test_no_keyring_at_all_warns_once_and_still_works(home, user, bed, keyctl):
    """auto with no session bus and a session keyring that refuses keys:
    SPEC says `none` with one warning."""
    home.add_source_profile("work", user, mfa_process=False)
    script = (
        'keyctl setperm @s 0 >/dev/null && ! keyctl add user stsmfa-probe x @s >/dev/null 2>&1 || exit 97\n'
        'exec "$@"'
    )
    argv = [keyctl, "session", "-", "sh", "-c", script, "sh", str(home.bin), "credential-process", "work"]
    cp = home._run(argv, env={**_no_bus_env(home), "STSMFA_MFA_CODE": home.code(user)}, timeout=30)
    # keyctl's own "Joined session keyring" line is not stsmfa's
    stderr = "\n".join(ln for ln in cp.stderr.splitlines() if not ln.startswith("Joined session keyring"))
    assert cp.returncode != 97, "precondition: keyutils still took a key after setperm 0"
    assert cp.returncode == 0, f"exit {cp.returncode}, wanted 0 with one warning (SPEC: auto falls back to none):\n{stderr}"
    assert json.loads(cp.stdout)["AccessKeyId"].startswith("ASIA")
    lines = [ln for ln in stderr.splitlines() if ln.startswith("stsmfa:")]
    warnings = [ln for ln in lines if ln.startswith("stsmfa: warning:")]
    assert len(warnings) == 1, stderr
    assert not [ln for ln in lines if ln.startswith("stsmfa: error:")]
    assert sts_ok(bed, user) == 1


def test_foreign_json_in_the_store_entry_is_a_miss_and_is_overwritten(home, user, bed, keyutils_ok):
    from keyrings import keyutils_keys, keyutils_read, keyutils_update

    home.env["STSMFA_STORE"] = "keyutils"
    home.add_source_profile("work", user, mfa_process=False)
    before = set(keyutils_keys(home.env))
    first = home.credential_process("work", env={"STSMFA_MFA_CODE": home.code(user)})
    new = [k for k, desc in keyutils_keys(home.env).items() if k not in before and user.serial in desc]
    assert len(new) == 1, keyutils_keys(home.env)
    foreign = json.dumps({"Version": 1, "AccessKeyId": "AKIAFOREIGN", "Expiration": "2099-01-01T00:00:00Z"})
    keyutils_update(new[0], foreign, home.env)
    assert keyutils_read(new[0], home.env) == foreign
    # a fixed code: no wait for the next 30-second step
    second = home.run("credential-process", "work", "-v", env={"STSMFA_MFA_CODE": home.code(user)})
    assert second.returncode == 0, second.stderr
    cred = json.loads(second.stdout)
    assert cred["AccessKeyId"] not in (first["AccessKeyId"], "AKIAFOREIGN")
    assert sts_ok(bed, user) == 2
    third = home.run("credential-process", "work", "-v")  # no code source: only a hit succeeds
    assert third.returncode == 0 and json.loads(third.stdout) == cred
    assert "cache hit" in third.stderr.lower(), third.stderr


# ---------------------------------------------------------------------------
# Config faults


def test_missing_config_files_are_one_clear_error(home, user, bed):
    home.add_source_profile("work", user)
    cp = home.run("credential-process", "work", env={
        "AWS_CONFIG_FILE": str(home.root / "no-such-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home.root / "no-such-credentials"),
    })
    assert_error(cp, "work", hint=True)
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0
    assert_nothing_cached(home, user)


def test_unreadable_config_file_is_one_clear_error_naming_it(home, user, bed):
    """The whole profile lives in the config file, and that path is a directory."""
    home.add_source_profile("work", user)
    keys = dict(home.credentials.items("work"))
    home.credentials.remove_section("work")
    home.set_config("profile work", keys)  # also rewrites credentials without [work]
    unreadable = home.root / "config-is-a-directory"
    unreadable.mkdir()
    cp = home.run("credential-process", "work", env={"AWS_CONFIG_FILE": str(unreadable)})
    assert_error(cp, hint=True)
    assert str(unreadable) in cp.stderr or "directory" in cp.stderr.lower(), (
        f"the error does not say which file could not be read:\n{cp.stderr}")
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0
    assert_nothing_cached(home, user)


def test_a_config_file_with_a_non_utf8_byte_is_an_error_naming_file_and_line(home, user):
    home.add_source_profile("work", user)
    text = home.config_path.read_bytes()
    home.config_path.write_bytes(text + b"# caf\xe9 au lait\n")
    line = text.count(b"\n") + 1
    cp = home.run("credential-process", "work")
    err = assert_error(cp, str(home.config_path), f"line {line}", "UTF-8")
    assert "hint:" in err


def test_missing_profile_is_a_clear_error(home, user):
    home.add_source_profile("work", user)
    cp = home.run("credential-process", "nosuch", "--mfa-code", "123456")
    assert_error(cp, "nosuch")


def test_source_profile_with_only_credential_process_is_a_clear_error(home, user, bed):
    home.set_config("profile work", {
        "credential_process": "stsmfa credential-process work",
        "mfa_serial": user.serial,
        "region": "us-east-1",
    })
    t0 = time.monotonic()
    cp = home.run("credential-process", "work", "--mfa-code", "123456", timeout=30)
    assert time.monotonic() - t0 < 10
    assert_error(cp, "credential_process")
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


# ---------------------------------------------------------------------------
# Ctrl-C at the prompt


def test_ctrl_c_at_the_prompt_leaves_no_lock_and_nothing_cached(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    term = PtyProcess([str(home.bin), "credential-process", "work"],
                      env=home._env({"TERM": "dumb", "STSMFA_LOCK_TIMEOUT": "60"}), cwd=home.root)
    try:
        term.expect(r"MFA code for profile work", timeout=30)
        t0 = time.monotonic()
        term.send("\x03")  # Ctrl-C: SIGINT to the terminal's foreground group
        rc = term.wait(timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        term.close()
    assert rc != 0, f"exit {rc} after Ctrl-C:\n{term.text}"
    assert "{" not in term.text, "printed credentials after Ctrl-C"
    assert_nothing_cached(home, user)
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0

    t0 = time.monotonic()
    cp = home.run("credential-process", "work",
                  env={"STSMFA_MFA_CODE": home.code(user), "STSMFA_LOCK_TIMEOUT": "60"}, timeout=40)
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert took < 10, f"the next call took {took:.1f}s: the lock outlived the interrupted process"
    assert sts_ok(bed, user) == 1
