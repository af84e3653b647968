"""Many processes at once (SPEC: many processes at once): a crowd of cold
`credential-process` calls, stsmfa's own or the AWS CLI's, shares one code and
one STS call, also when the MFA serial is discovered; the profile lock dies
with its holder, and a waiter gives up after STSMFA_LOCK_TIMEOUT with a clear
error."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from assertions import assert_error, assert_nothing_cached
from fake_programs import hanging_command
from harness import sts_failed, sts_ok, wait_until
from parallel import run_parallel


def slow_code_source(home, user, log, delay: float = 0.5) -> str:
    """The logging TOTP source, slowed down so that every parallel caller is
    surely waiting while the first one asks."""
    return f"sleep {delay}; {home.mfa_process(user, log)}"


# ---------------------------------------------------------------------------
# a crowd of cold calls


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


@pytest.mark.parametrize("store", ["secret-service", "keyutils"])
def test_a_call_during_a_renewal_waits_for_it_without_reading_the_store_first(home, user, bed, store):
    """With the Secret Service every store read is a D-Bus session of its own:
    calls that start while another process renews the session go straight to
    waiting for it (256 at once queued up in the keyring daemon otherwise).
    keyutils reads cost less than the check, so there the read stays."""
    log = home.tools / "codes.log"
    # The code is logged at once, then the process keeps the holder waiting.
    home.add_source_profile("work", user, mfa_process=f"{home.mfa_process(user, log)}; sleep 2")
    env = {**home.env, "STSMFA_STORE": store}
    first = subprocess.Popen([str(home.bin), "credential-process", "work"], env=env, cwd=home.root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: home.calls(log) == 1, timeout=10), "the first call never asked for a code"
        second = home.run("credential-process", "work", "-v", env=env)
        out, err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == json.loads(out)
    skipped = "another stsmfa process is renewing this session" in second.stderr
    assert skipped == (store == "secret-service"), second.stderr
    assert home.calls(log) == 1 and sts_ok(bed, user) == 1


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


# ---------------------------------------------------------------------------
# the profile lock


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
