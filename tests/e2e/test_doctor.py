"""`stsmfa doctor` on the bed: a healthy setup is all `ok` (exit 0), and each
injected failure (the clock off by the bed's `Date` header, a locked Secret
Service collection, a missing `stsmfa-sts`, no MFA device, a policy that does
not require MFA, a `credential_process` line pointing nowhere) gives its line
and exit code. `--json` parses, and nothing secret is ever printed."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from harness import Home
from keyrings import keyring_session_argv


def doctor(home: Home, *args: str, env=None):
    return home.run("doctor", *args, env=env, timeout=90)


def lines(cp, status: str | None = None, group: str | None = None) -> list[str]:
    """The check lines (`STATUS GROUP MESSAGE`), optionally of one status or group."""
    out = []
    for ln in cp.stdout.splitlines():
        parts = ln.split(None, 2)
        if len(parts) < 3 or parts[0] not in ("ok", "warn", "fail"):
            continue
        if (status is None or parts[0] == status) and (group is None or parts[1] == group):
            out.append(ln)
    return out


def the_line(cp, status: str, group: str, needle: str) -> str:
    found = [ln for ln in lines(cp, status, group) if needle in ln]
    assert found, f"no `{status} {group}` line with {needle!r}:\n{cp.stdout}\n{cp.stderr}"
    return found[0]


def assert_no_secrets(home: Home, cp, *secrets: str) -> None:
    for s in secrets:
        assert s and s not in cp.stdout and s not in cp.stderr, "a secret was printed"


def source(home: Home, user, **kwargs):
    """A source profile, its credentials file 0600 as `aws configure` leaves it."""
    prof = home.add_source_profile("work", user, **kwargs)
    home.credentials_path.chmod(0o600)
    return prof


def test_healthy_setup_is_all_ok(home, user, bed, store):
    prof = source(home, user)
    home.add_process_profile("work-mfa", "work")
    cred = home.credential_process("work-mfa")

    cp = doctor(home, "work-mfa")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert lines(cp) and lines(cp) == lines(cp, "ok"), cp.stdout
    groups = [ln.split()[1] for ln in lines(cp)]
    # in the order, every group present
    order = ["config", "store", "code", "clock", "identity", "policy", "sessions"]
    assert [g for g in order if g in groups] == order, groups
    assert sorted(set(groups), key=order.index) == order
    assert cp.stdout.rstrip().endswith("0 warn, 0 fail"), cp.stdout
    the_line(cp, "ok", "config", "profile work-mfa serves the session of source profile work")
    the_line(cp, "ok", "config", "runs " + str(home.bin) + ", with stsmfa-sts beside it")
    the_line(cp, "ok", "store", store)
    the_line(cp, "ok", "code", "mfa_process printed a 6-digit code")
    the_line(cp, "ok", "clock", "in step with STS")
    the_line(cp, "ok", "identity", user.arn)
    the_line(cp, "ok", "identity", f"{user.serial} is assigned to {user.name} and enabled")
    the_line(cp, "ok", "policy", "MFA is required")
    assert re.search(r"MFA session of work: 1[12]h \d\dm left", the_line(cp, "ok", "sessions", "work"))
    assert_no_secrets(home, cp, user.secret_access_key, user.seed, cred["SecretAccessKey"], cred["SessionToken"])
    assert user.access_key_id not in cp.stdout, "the key ID is printed masked"
    # mfa_process ran once for its check; STS got no code from doctor
    assert home.calls(prof.log) == 2


def test_json_of_a_healthy_setup_parses(home, user, bed):
    source(home, user)
    home.add_process_profile("work-mfa", "work")
    text = [ln.split()[1] for ln in lines(doctor(home, "work-mfa", env={"STSMFA_MFA_CODE": home.code(user)}))]
    js = doctor(home, "work-mfa", "--json", env={"STSMFA_MFA_CODE": home.code(user)})
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["profile"] == "work-mfa" and data["ok"] is True
    assert data["summary"] == {"ok": len(data["checks"]), "warn": 0, "fail": 0}
    assert {c["status"] for c in data["checks"]} == {"ok"}
    assert [c["group"] for c in data["checks"]] == text
    assert all(c["message"] and "fix" not in c for c in data["checks"])


@pytest.mark.parametrize("skew, status, code", [(45, "fail", 1), (15, "warn", 0)])
def test_clock_skew_from_the_date_header(home, user, bed, skew, status, code):
    source(home, user)
    bed.set_clock_skew(user.access_key_id, skew)
    try:
        cp = doctor(home, "work")
    finally:
        bed.set_clock_skew(user.access_key_id, 0)
    assert cp.returncode == code, cp.stdout + cp.stderr
    # The Date header has whole seconds: the measure is the skew give or take 1 s.
    line = the_line(cp, status, "clock", " s behind STS")
    assert re.search(rf"\b({skew - 1}|{skew}|{skew + 1}) s behind STS", line), line
    assert "timedatectl" in cp.stdout.split(line, 1)[1].splitlines()[1], cp.stdout
    assert lines(cp, "fail") == ([line] if status == "fail" else []), cp.stdout


def test_credentials_file_others_may_read_warns(home, user, bed):
    home.add_source_profile("work", user)
    home.credentials_path.chmod(0o644)
    cp = doctor(home, "work")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    line = the_line(cp, "warn", "config", "which others may read")
    assert f"chmod 600 {home.credentials_path}" in cp.stdout.split(line, 1)[1]


def test_locked_secret_service_collection(home, user, bed, secret_service_ok):
    source(home, user)
    runs = iter(range(10))

    def private() -> dict:
        d = home.root / f"xdg-run-{next(runs)}"
        d.mkdir(mode=0o700)
        return {"DBUS_SESSION_BUS_ADDRESS": None, "XDG_RUNTIME_DIR": str(d)}

    make = ["timeout", "20", "sh", "-c", "printf v | secret-tool store --label=p service probe username p"]
    mk = home._run(keyring_session_argv("right", make), env=private(), timeout=60)
    assert mk.returncode == 0, mk.stderr
    cp = home._run(keyring_session_argv("wrong", [str(home.bin), "doctor", "work", "--store", "secret-service"]),
                   env=private(), timeout=90)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    line = the_line(cp, "fail", "store", "locked")
    assert "unlock" in cp.stdout.split(line, 1)[1], cp.stdout


def test_missing_stsmfa_sts(home, user, bed):
    source(home, user)
    lonely = home.root / "lonely"
    lonely.mkdir()
    shutil.copy2(home.bin, lonely / "stsmfa")
    home.add_process_profile("work-mfa", "work")
    home.set_config("profile work-mfa", {"credential_process": f"{lonely / 'stsmfa'} credential-process work"})

    cp = doctor(home, "work-mfa")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    the_line(cp, "fail", "config", f"{lonely / 'stsmfa-sts'} is missing")

    # doctor itself from that lonely stsmfa: the small binary says so
    alone = home._run([str(lonely / "stsmfa"), "doctor", "work"])
    assert alone.returncode == 1, alone.stdout + alone.stderr
    line = the_line(alone, "fail", "install", f"cannot run {lonely / 'stsmfa-sts'}")
    assert "installed next to stsmfa" in alone.stdout.split(line, 1)[1], alone.stdout
    js = json.loads(home._run([str(lonely / "stsmfa"), "doctor", "work", "--json"]).stdout)
    assert js["ok"] is False and js["checks"][0]["group"] == "install"


def test_no_mfa_device(home, make_user, bed):
    user = make_user(mfa=False)
    source(home, user, mfa_serial=False, mfa_process=False)
    cp = doctor(home, "work", env={"STSMFA_MFA_CODE": "123456"})
    assert cp.returncode == 1, cp.stdout + cp.stderr
    line = the_line(cp, "fail", "identity", f"{user.name} has no enabled MFA device")
    assert "stsmfa enroll work" in cp.stdout.split(line, 1)[1], cp.stdout
    the_line(cp, "ok", "config", "no mfa_serial")
    assert [ln.split()[1] for ln in lines(cp, "fail")] == ["identity"], cp.stdout


def test_policy_that_does_not_require_mfa_warns(home, make_user, bed):
    from mfa_bed import policies

    user = make_user(policy=policies.allow_all())
    source(home, user)
    cp = doctor(home, "work")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    the_line(cp, "warn", "policy", "does not require MFA")
    assert lines(cp, "fail") == [], cp.stdout
    data = json.loads(doctor(home, "work", "--json").stdout)
    assert [c["group"] for c in data["checks"] if c["status"] == "warn"] == ["policy"]
    assert data["ok"] is True


def test_credential_process_pointing_nowhere(home, user, bed):
    source(home, user)
    home.set_config("profile broken", {"credential_process": "/nowhere/bin/stsmfa credential-process work"})
    cp = doctor(home, "work")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    line = the_line(cp, "fail", "config", "[profile broken] runs /nowhere/bin/stsmfa, which does not exist")
    assert "credential_process =" in cp.stdout.split(line, 1)[1]
    data = json.loads(doctor(home, "work", "--json").stdout)
    assert data["ok"] is False and data["summary"]["fail"] == 1


def test_a_profile_that_is_not_there_fails_in_config(home, bed):
    cp = doctor(home, "nope")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    the_line(cp, "fail", "config", "nope")
    assert not lines(cp, group="clock"), "no AWS call without a profile"
