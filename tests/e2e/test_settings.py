"""The settings of SPEC.md and where they come from: the session duration
(--duration, STSMFA_DURATION, the profile's stsmfa_duration) and its limits,
the refresh margin (STSMFA_MIN_TTL, scaled down for sessions no longer than
it), which profile is meant when none is given (AWS_PROFILE, then default), and
the MFA device when no mfa_serial is configured."""

from __future__ import annotations

import json

import pytest

from assertions import assert_error, assert_session
from harness import sts_failed, sts_ok


# ---------------------------------------------------------------------------
# the session duration


def test_duration_option_is_honoured(home, user):
    home.add_source_profile("work", user)
    assert_session(home.credential_process("work", "--duration", "1h"), user, hours=1)


def test_duration_precedence_option_env_profile(home, make_user):
    users = [make_user() for _ in range(3)]
    for i, u in enumerate(users):
        home.add_source_profile(f"p{i}", u, extra={"stsmfa_duration": "2h"})
    assert_session(home.credential_process("p0"), users[0], hours=2)
    assert_session(home.credential_process("p1", env={"STSMFA_DURATION": "3h"}), users[1], hours=3)
    assert_session(
        home.credential_process("p2", "--duration", "4h", env={"STSMFA_DURATION": "3h"}), users[2], hours=4
    )


@pytest.mark.parametrize(
    "how,value",
    [("option", "10m"), ("option", "37h"), ("option", "abc"), ("env", "37h"), ("profile", "10m")],
)
def test_invalid_duration_rejected_before_any_sts_call(home, user, bed, how, value):
    extra = {"stsmfa_duration": value} if how == "profile" else {}
    prof = home.add_source_profile("work", user, extra=extra)
    args = ["--duration", value] if how == "option" else []
    env = {"STSMFA_DURATION": value} if how == "env" else None
    cp = home.run("credential-process", "work", *args, env=env)
    assert cp.returncode in (1, 2), cp
    assert cp.stdout == ""
    assert value in cp.stderr or "duration" in cp.stderr.lower(), cp.stderr
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0
    assert home.calls(prof.log) == 0, "asked for a code before validating the duration"


# ---------------------------------------------------------------------------
# the refresh margin


@pytest.mark.parametrize("min_ttl,refreshed", [("2h", True), ("30m", False), ("1800", False)])
def test_min_ttl_refresh_margin(home, user, bed, min_ttl, refreshed):
    """A cached session with less than STSMFA_MIN_TTL left is replaced (the
    margin applies as set while it is shorter than the session asked for)."""
    home.add_source_profile("work", user)
    first = home.credential_process("work", "--duration", "1h")
    env = {"STSMFA_MIN_TTL": min_ttl}
    second = home.credential_process("work", "--duration", "3h", "--mfa-code", home.code(user), env=env)
    assert (second["AccessKeyId"] != first["AccessKeyId"]) is refreshed
    assert sts_ok(bed, user) == (2 if refreshed else 1)


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
# which profile


def test_aws_profile_then_default_when_no_profile_given(home, make_user):
    a, b = make_user(), make_user()
    home.add_source_profile("work", a)
    home.add_source_profile("default", b)
    cp = home.run("credential-process", env={"AWS_PROFILE": "work"})
    assert cp.returncode == 0, cp.stderr
    assert [e["profile"] for e in home.status_for(a)] == ["work"]
    assert home.status_for(b) == []
    cp = home.run("credential-process")
    assert cp.returncode == 0, cp.stderr
    assert [e["profile"] for e in home.status_for(b)] == ["default"]


# ---------------------------------------------------------------------------
# MFA device discovery


def test_mfa_serial_discovered_when_not_configured(home, user, bed):
    home.add_source_profile("work", user, mfa_serial=False)
    cred = home.credential_process("work")
    assert_session(cred, user, hours=12)
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True
    assert [e["mfa_serial"] for e in home.status_for(user)] == [user.serial]


def test_user_without_device_gets_a_clear_error(home, make_user, bed):
    u = make_user(mfa=False)
    home.add_source_profile("work", u, mfa_serial=False, mfa_process=False)
    cp = home.run("credential-process", "work", "--mfa-code", "123456")
    assert_error(cp, "device")
    assert sts_ok(bed, u) == 0
