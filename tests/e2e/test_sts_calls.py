"""STS calls that carry an MFA code, end to end (issue: hardening, defects 6,
7, 8 and 10): a code-bearing call is sent once and never retried, and counts
as spent once it may have reached STS; when the lock holder fails, its
waiters report its failure instead of each spending a code; profiles that
share an MFA device take turns with its codes; and a 200 reply with a bad
body is refused before anything is cached or printed."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from assertions import assert_error, error_lines
from fake_endpoints import FakeEndpoint, closed_port, sts_error_xml
from fake_programs import authenticator_command
from harness import sts_failed, sts_ok
from parallel import run_parallel
from pty_driver import ensure_room_in_step


def assert_one_error_with_hint(cp, *needles):
    return assert_error(cp, *needles, hint=True)


def assert_nothing_cached(home, user) -> None:
    assert home.status_for(user) == [], "a session was cached after a failure"


class Stall:
    """A plan step that answers only after `seconds` (or when released)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def wait(self, seconds: float) -> None:
        self.release.wait(seconds)


# ---------------------------------------------------------------------------
# A slow STS, one that never answers, one that cannot be reached


def test_sts_answering_after_12_s_gets_the_code_once_and_the_session_works(home, user, bed):
    """The SDK used to give up on an attempt after 10 s and send the code again:
    STS issued a session for the first request, refused the others as a reused
    code, and the user got an error and no session."""
    home.add_source_profile("work", user, mfa_process=False)
    stall = Stall()

    def plan(n, action):
        if action == "GetSessionToken":
            stall.wait(12)
        return "forward"

    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": home.code(user), "STSMFA_TIMEOUT": "40",
        }, timeout=90)
        took = time.monotonic() - t0
        stall.release.set()
        actions = fake.actions()
    assert cp.returncode == 0, cp.stderr
    assert actions == ["GetSessionToken"], f"the code was sent {len(actions)} times: {actions}"
    assert took >= 11.5, f"answered after {took:.1f}s: the fake did not stall"
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0
    cred = json.loads(cp.stdout)
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True
    assert home.credential_process("work") == cred  # cached: a hit, no code needed


def test_sts_that_never_answers_is_asked_once_and_the_code_counts_as_spent(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    stall = Stall()

    def plan(n, action):
        stall.wait(60)  # far past STSMFA_TIMEOUT
        return 500, sts_error_xml("InternalFailure", "too late")

    code = home.code(user)
    with FakeEndpoint(plan) as fake:
        t0 = time.monotonic()
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": code, "STSMFA_TIMEOUT": "3",
        }, timeout=60)
        took = time.monotonic() - t0
        first = fake.actions()
        # The same code again: refused here, never sent.
        again = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": code, "STSMFA_TIMEOUT": "3",
        }, timeout=60)
        second = fake.actions()
        stall.release.set()
    assert_one_error_with_hint(cp, "did not answer within 3 s", "may have been used", "wait for the next code")
    assert first == ["GetSessionToken"], f"sent {len(first)} times: {first}"
    assert took < 8, f"took {took:.1f}s with STSMFA_TIMEOUT=3"
    assert_one_error_with_hint(again, "already used")
    assert second == first, f"the second run sent the spent code again: {second}"
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0
    assert_nothing_cached(home, user)


def test_sts_that_never_answers_makes_a_code_program_wait_for_the_next_step(home, user, bed):
    """An authenticator shows the same code for 30 s: after a call that got no
    answer, the next run waits for a new one instead of resending it."""
    log = home.tools / "authenticator.log"
    home.add_source_profile("work", user, mfa_process=authenticator_command(home, user, log))
    ensure_room_in_step(12)  # set-up: both runs start in the same step
    stall = Stall()

    def plan(n, action):
        if n == 1:
            stall.wait(60)
            return 500, sts_error_xml("InternalFailure", "too late")
        return "forward"

    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        cp = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_TIMEOUT": "2"}, timeout=60)
        stall.release.set()
        again = home.run("credential-process", "work", env={"AWS_ENDPOINT_URL": fake.endpoint}, timeout=90)
        actions = fake.actions()
    assert_one_error_with_hint(cp, "did not answer")
    assert again.returncode == 0, again.stderr
    assert re.search(r"already used; waiting \d+ s", again.stderr), again.stderr
    codes = [line.split() for line in log.read_text().splitlines()]
    assert len(codes) == 2 and codes[0][0] != codes[1][0], f"codes asked: {codes}"
    assert int(codes[1][1]) > int(codes[0][1]), f"the second code is of the same step: {codes}"
    assert actions == ["GetSessionToken", "GetSessionToken"], actions
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0


def test_a_connection_that_never_opens_does_not_spend_the_code(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    code = home.code(user)
    cp = home.run("credential-process", "work", env={
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}", "STSMFA_MFA_CODE": code,
    }, timeout=60)
    assert_one_error_with_hint(cp, "cannot reach AWS")
    ok = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": code}, timeout=60)
    assert ok.returncode == 0, f"the code that never left was refused: {ok.stderr}"
    assert sts_ok(bed, user) == 1


# ---------------------------------------------------------------------------
# A lock holder that fails


def test_sts_500_to_10_parallel_cold_calls_is_one_request_one_code_and_one_error_each(home, user, bed):
    """The waiters report the holder's failure: they neither spend codes of
    their own nor give up on the lock timeout."""
    prof = home.add_source_profile("work", user)
    slow = f"sleep 1; {home.mfa_process(user, prof.log)}"  # every other caller is surely waiting
    home.set_config("profile work", {"mfa_process": slow})

    with FakeEndpoint(lambda n, a: (500, sts_error_xml("InternalFailure", "We encountered an internal error."))) as fake:
        t0 = time.monotonic()
        results = run_parallel([[str(home.bin), "credential-process", "work"]] * 10,
                               {**home.env, "AWS_ENDPOINT_URL": fake.endpoint}, home.root, timeout=120)
        took = time.monotonic() - t0
        actions = fake.actions()
    assert actions == ["GetSessionToken"], f"{len(actions)} requests: {actions}"
    assert home.calls(prof.log) == 1, f"{home.calls(prof.log)} codes were asked for"
    for r in results:
        assert r.returncode == 1 and r.stdout == "", r
        assert len(error_lines(r.stderr)) == 1, r.stderr
        assert re.search(r"HTTP 500 \(InternalFailure\)", r.stderr), r.stderr
        assert "hint:" in r.stderr, r.stderr
        assert "gave up" not in r.stderr, r.stderr
    others = [r for r in results if "another stsmfa process" in r.stderr]
    assert len(others) == 9, f"{len(others)} of 10 name the other process: {results}"
    assert took < 30, f"took {took:.1f}s"
    assert_nothing_cached(home, user)


def test_a_failure_from_before_a_run_does_not_stop_it(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    with FakeEndpoint(lambda n, a: (500, sts_error_xml("InternalFailure", "internal error"))) as fake:
        bad = home.run("credential-process", "work", env={
            "AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_MFA_CODE": home.code(user)})
    assert_one_error_with_hint(bad, "HTTP 500")
    ok = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": home.code(user)})
    assert ok.returncode == 0, ok.stderr
    assert "another stsmfa process" not in ok.stderr


# ---------------------------------------------------------------------------
# Two profiles, one MFA device


def test_two_profiles_sharing_one_device_cold_at_once_send_one_code_each(home, user, bed):
    """Both read the same authenticator: without a lock per device both sent
    the same code and STS refused the second as reused."""
    log = home.tools / "authenticator.log"
    source = authenticator_command(home, user, log)
    home.add_source_profile("work", user, mfa_process=source)
    home.add_source_profile("play", user, mfa_process=source)
    ensure_room_in_step(10)  # set-up: both start in the same step

    results = run_parallel([[str(home.bin), "credential-process", p] for p in ("work", "play")],
                           home.env, home.root, timeout=120)

    for r in results:
        assert r.returncode == 0, r
        assert "rejected" not in r.stderr.lower(), r.stderr
    keys = {json.loads(r.stdout)["AccessKeyId"] for r in results}
    assert len(keys) == 2, "the profiles got one session"
    codes = [line.split()[0] for line in log.read_text().splitlines()]
    assert len(codes) == 2 and len(set(codes)) == 2, f"codes asked: {codes}"
    assert sts_ok(bed, user) == 2 and sts_failed(bed, user) == 0
    for p in ("work", "play"):
        home.credential_process(p)  # both cached: hits


# ---------------------------------------------------------------------------
# 200 replies with bad bodies

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY9"


def reply(key_id: str = "ASIAFAKEKEYID1234567", token: str = "FwoGZXIvYXdzEFAKETOKEN",
          expiration: str | None = "2099-01-01T00:00:00Z") -> bytes:
    exp = f"<Expiration>{expiration}</Expiration>" if expiration is not None else ""
    return (
        '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetSessionTokenResult><Credentials>"
        f"<SessionToken>{token}</SessionToken><SecretAccessKey>{SECRET}</SecretAccessKey>"
        f"{exp}<AccessKeyId>{key_id}</AccessKeyId>"
        "</Credentials></GetSessionTokenResult>"
        "<ResponseMetadata><RequestId>58c5dbae-abef-11e0-8cfe-09039844ac7d</RequestId></ResponseMetadata>"
        "</GetSessionTokenResponse>"
    ).encode()


BIG_TOKEN = "A" * (5 * 1024 * 1024)

BAD_REPLIES = {
    "missing-expiration": (reply(expiration=None), "invalid session: it has no expiry"),
    "past-expiration": (reply(expiration="2001-01-01T00:00:00Z"), "invalid session: it expired already"),
    "epoch-expiration": (reply(expiration="1970-01-01T00:00:00Z"), "invalid session: it has no expiry"),
    "far-future-expiration": (reply(expiration="9999-12-31T23:59:59Z"), "later than the"),
    "empty-access-key-id": (reply(key_id=""), "invalid session: its access key ID is empty"),
    "non-asia-access-key-id": (reply(key_id="AKIAPERMANENTKEY1234"), "does not start with ASIA"),
    "5mb-token": (reply(token=BIG_TOKEN), "session token is 5242880 bytes"),
    "garbage-xml": (b"<html><body>Welcome to the captive portal</body></html>", "cannot be parsed"),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES), ids=list(BAD_REPLIES))
def test_200_reply_with_a_bad_body_is_refused_and_nothing_cached(home, user, bed, case):
    body, needle = BAD_REPLIES[case]
    home.add_source_profile("work", user, mfa_process=False)
    with FakeEndpoint(lambda n, a: (200, body)) as fake:
        env = {"AWS_ENDPOINT_URL": fake.endpoint}
        cp = home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": "111111"}, timeout=60)
        # The fake never checks codes: a second one, since the first is spent.
        verbose = home.run("credential-process", "work", "-v", env={**env, "STSMFA_MFA_CODE": "222222"}, timeout=60)
        actions = fake.actions()
    assert_one_error_with_hint(cp, needle)
    assert actions == ["GetSessionToken"] * 2, actions
    assert verbose.returncode == 1 and verbose.stdout == "", verbose
    assert len(error_lines(verbose.stderr)) == 1, verbose.stderr
    assert needle.lower() in verbose.stderr.lower(), verbose.stderr
    for out in (cp.stderr, verbose.stderr):
        assert SECRET not in out and "FwoGZXIvYXdzEFAKETOKEN" not in out, "a secret on stderr"
        assert len(out) < 10_000, f"{len(out)} bytes on stderr"
    if case == "garbage-xml":
        # -v adds what the parser said.
        said = [ln for ln in verbose.stderr.splitlines() if "GetSessionToken failed:" in ln]
        assert said and "GetSessionTokenResponse" in said[0], verbose.stderr
        assert "run again with -v" in cp.stderr, cp.stderr
    assert_nothing_cached(home, user)
    assert sts_ok(bed, user) == 0
