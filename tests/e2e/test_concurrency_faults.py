"""Many processes at once, the refresh margin, reused codes, and every fault
handled (issue 4): one code and one STS call for a crowd of cold
credential_process calls, a lock that dies with its holder, a waiter that
gives up, and STS, keyring and config faults that end in one clear error line
with a hint and nothing cached."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from assertions import assert_error
from fake_endpoints import Blackhole, FakeEndpoint, closed_port, sts_error_xml
from fake_programs import authenticator_command, hanging_command
from harness import missing, sts_failed, sts_ok, wait_until
from keyrings import keyring_session_argv
from parallel import run_parallel
from pty_driver import PtyProcess, ensure_room_in_step, seconds_left_in_step


def slow_code_source(home, user, log, delay: float = 0.5) -> str:
    """The logging TOTP source, slowed down so that every parallel caller is
    surely waiting while the first one asks."""
    return f"sleep {delay}; {home.mfa_process(user, log)}"


# The name the STS fault tests below were written with.
assert_one_error_with_hint = functools.partial(assert_error, hint=True)


def assert_nothing_cached(home, user, env=None) -> None:
    assert home.status_for(user, env=env) == [], "a session was cached after a failure"


# ---------------------------------------------------------------------------
# Many processes at once


def test_32_parallel_cold_credential_process_calls_share_one_code_and_one_sts_call(home, user, bed):
    log = home.tools / "codes.log"
    home.add_source_profile("work", user, mfa_process=slow_code_source(home, user, log))

    results = run_parallel([[str(home.bin), "credential-process", "work"]] * 32, home.env, home.root, timeout=60)

    failed = [r for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)} of 32 failed: {failed[:3]}"
    creds = [json.loads(r.stdout) for r in results]
    assert len({c["AccessKeyId"] for c in creds}) == 1, "the processes got different sessions"
    assert all(c == creds[0] for c in creds)
    assert home.calls(log) == 1, f"{home.calls(log)} codes were asked for"
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0
    assert bed.session_info(creds[0]["AccessKeyId"])["mfa"] is True


def test_parallel_cold_calls_with_a_discovered_serial_share_one_code(home, user, bed):
    """Without mfa_serial the holder discovers the device; the waiters must
    find its session under that serial instead of discovering and asking again."""
    log = home.tools / "codes.log"
    home.add_source_profile("work", user, mfa_serial=False, mfa_process=slow_code_source(home, user, log))

    results = run_parallel([[str(home.bin), "credential-process", "work"]] * 12, home.env, home.root, timeout=60)

    failed = [r for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)} of 12 failed: {failed[:3]}"
    assert len({json.loads(r.stdout)["AccessKeyId"] for r in results}) == 1
    assert home.calls(log) == 1, f"{home.calls(log)} codes were asked for"
    assert sts_ok(bed, user) == 1


def test_8_parallel_aws_cli_calls_on_a_cold_cache_ask_one_code(home, user, bed, aws_cli):
    log = home.tools / "codes.log"
    home.add_source_profile("work", user, mfa_process=slow_code_source(home, user, log))
    home.add_process_profile("work-mfa", "work")

    argv = [aws_cli, "sts", "get-caller-identity", "--profile", "work-mfa", "--output", "json"]
    results = run_parallel([argv] * 8, home.env, home.root, timeout=180)

    failed = [r for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)} of 8 aws calls failed: {failed[:3]}"
    assert {json.loads(r.stdout)["Arn"] for r in results} == {user.arn}
    assert home.calls(log) == 1, f"{home.calls(log)} codes were asked for"
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0


class Holder:
    """A `credential-process` that holds the profile lock while "prompting"
    (its mfa_process never answers)."""

    def __init__(self, home, user, profile: str = "work"):
        self.log = home.tools / "hanging.log"
        home.add_source_profile(profile, user, mfa_process=hanging_command(self.log))
        self.proc = subprocess.Popen(
            [str(home.bin), "credential-process", profile],
            env=home._env({"STSMFA_LOCK_TIMEOUT": "60"}), cwd=home.root,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )
        if not wait_until(lambda: self.log.exists() or self.proc.poll() is not None, timeout=30):
            self.kill()
            pytest.fail("the lock holder never started asking for a code")
        if self.proc.poll() is not None:
            out, err = self.proc.communicate()
            pytest.fail(f"the lock holder ended early (exit {self.proc.returncode}): {err}")

    def kill(self) -> None:
        """SIGKILL to stsmfa and its mfa_process (the whole process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.stdout and not self.proc.stdout.closed:
            self.stdout, self.stderr = self.proc.communicate(timeout=10)


@pytest.mark.parametrize("victim", ["stsmfa-only", "process-group"])
def test_lock_holder_killed_while_prompting_does_not_block_the_next_call(home, user, bed, victim):
    """SIGKILL to stsmfa alone (its mfa_process lives on: it must not inherit
    the lock) or to the whole process group."""
    holder = Holder(home, user)
    try:
        if victim == "stsmfa-only":
            holder.proc.send_signal(signal.SIGKILL)
            holder.proc.wait(10)
        else:
            holder.kill()
        assert holder.proc.returncode == -signal.SIGKILL
        t0 = time.monotonic()
        cp = home.run("credential-process", "work",
                      env={"STSMFA_MFA_CODE": home.code(user), "STSMFA_LOCK_TIMEOUT": "60"}, timeout=40)
        took = time.monotonic() - t0
    finally:
        holder.kill()
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["AccessKeyId"].startswith("ASIA")
    assert took < 10, f"the next call took {took:.1f}s (lock timeout 60 s): the dead holder's lock was kept"
    assert sts_ok(bed, user) == 1


def test_waiter_gives_up_after_the_lock_timeout_with_a_clear_error(home, user, bed):
    holder = Holder(home, user)
    try:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work",
                      env={"STSMFA_MFA_CODE": home.code(user), "STSMFA_LOCK_TIMEOUT": "2"}, timeout=40)
        took = time.monotonic() - t0
        assert holder.proc.poll() is None, "the waiter disturbed the lock holder"
    finally:
        holder.kill()
    assert_error(cp, hint=True)
    assert re.search(r"wait|lock|another", cp.stderr, re.I), cp.stderr
    assert 1.5 <= took < 10, f"gave up after {took:.1f}s with STSMFA_LOCK_TIMEOUT=2"
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0, "the waiter called STS"
    assert_nothing_cached(home, user)


# ---------------------------------------------------------------------------
# The refresh margin


def test_a_session_no_longer_than_the_margin_is_cached_with_a_scaled_margin(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    short = {"STSMFA_DURATION": "900"}  # 15 min: inside the default 15-minute margin at once

    a = home.run("credential-process", "work", "-v", env={**short, "STSMFA_MFA_CODE": home.code(user)})
    assert a.returncode == 0, a.stderr
    assert "using 300 s" in a.stderr, a.stderr
    b = home.run("credential-process", "work", "-v", env=short)  # no code source: only a hit works
    assert b.returncode == 0, b.stderr
    first, second = json.loads(a.stdout), json.loads(b.stdout)
    assert second == first, "a 15-minute session was not served from the cache"
    assert "cache hit" in b.stderr.lower(), b.stderr
    assert sts_ok(bed, user) == 1

    # No code source at all below: only a cache hit can succeed.
    for env in ({"STSMFA_MIN_TTL": "60"}, {"STSMFA_MIN_TTL": "90s"}, {"STSMFA_MIN_TTL": "1m"}):
        c = home.run("credential-process", "work", "-v", env=env)
        assert c.returncode == 0, f"{env}: {c.stderr}"
        assert json.loads(c.stdout) == second, env
        assert "cache hit" in c.stderr.lower(), c.stderr
    home.set_config("profile work", {"stsmfa_min_ttl": "2m"})
    d = home.run("credential-process", "work")
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout) == second
    assert sts_ok(bed, user) == 1


# ---------------------------------------------------------------------------
# Reused codes


def test_a_given_code_that_was_just_used_is_refused_without_calling_sts(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    code = home.code(user)
    ok = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": code})
    assert ok.returncode == 0, ok.stderr
    again = home.run("credential-process", "work", "--refresh", env={"STSMFA_MFA_CODE": code})
    assert_error(again, "already used", hint=True)
    assert sts_ok(bed, user) == 1
    assert sts_failed(bed, user) == 0, "the used code was sent to STS again"


def test_slow_authenticator_code_of_a_used_step_waits_for_the_next_step(home, user, bed):
    """Takes up to 30 s: the second call must wait for the next 30-second step."""
    log = home.tools / "authenticator.log"
    home.add_source_profile("work", user, mfa_process=authenticator_command(home, user, log))
    ensure_room_in_step(8)  # set-up: both calls start in the same step
    first = home.run("credential-process", "work")
    assert first.returncode == 0, first.stderr
    left = seconds_left_in_step()
    t0 = time.monotonic()
    second = home.run("credential-process", "work", "--refresh", timeout=60)
    took = time.monotonic() - t0
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["AccessKeyId"] != json.loads(first.stdout)["AccessKeyId"]
    assert sts_failed(bed, user) == 0, "the code of the used step was sent again"
    assert sts_ok(bed, user) == 2
    steps = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert steps[-1] > steps[0], f"codes asked in steps {steps}"
    assert took >= left - 1.5, f"returned after {took:.1f}s, {left:.1f}s before the next step"
    assert re.search(r"wait", second.stderr, re.I), f"no word about waiting on stderr: {second.stderr!r}"


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
    with Blackhole() as hole:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": hole.address,
            "STSMFA_TIMEOUT": "2",
            "STSMFA_MFA_CODE": home.code(user),
        }, timeout=60)
        took = time.monotonic() - t0
        assert hole.accepted, "stsmfa never connected to the endpoint"
    assert_error(cp, hint=True)
    assert re.search(r"time|answer|respond", cp.stderr, re.I), cp.stderr
    assert took < 6, f"took {took:.1f}s with STSMFA_TIMEOUT=2"
    assert_nothing_cached(home, user)


def test_sts_5xx_is_retried_then_succeeds(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)

    def plan(n, action):
        return (500, sts_error_xml("InternalFailure", "try again")) if n <= 2 else "forward"

    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": home.code(user), "STSMFA_TIMEOUT": "20",
        }, timeout=60)
        actions = fake.actions()
    assert cp.returncode == 0, cp.stderr
    assert actions == ["GetSessionToken"] * 3, actions
    assert sts_ok(bed, user) == 1
    cred = json.loads(cp.stdout)
    assert [e["mfa_serial"] for e in home.status_for(user)] == [user.serial]
    assert home.credential_process("work") == cred  # cached: a hit, no code needed


@pytest.mark.parametrize(
    "status,code,needle",
    [(503, "ServiceUnavailable", r"unavailable|503"), (400, "Throttling", r"throttl")],
    ids=["503-always", "throttling-always"],
)
def test_sts_errors_that_persist_are_retried_then_one_clear_error(home, user, bed, status, code, needle):
    home.add_source_profile("work", user, mfa_process=False)
    with FakeEndpoint(lambda n, a: (status, sts_error_xml(code, "Rate exceeded"))) as fake:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": home.code(user), "STSMFA_TIMEOUT": "10",
        }, timeout=60)
        took = time.monotonic() - t0
        actions = fake.actions()
    assert_one_error_with_hint(cp)
    assert re.search(needle, cp.stderr, re.I), cp.stderr
    assert len(actions) >= 2, f"not retried: {actions}"
    assert set(actions) == {"GetSessionToken"}
    assert took < 15, f"took {took:.1f}s with STSMFA_TIMEOUT=10"
    assert_nothing_cached(home, user)


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
