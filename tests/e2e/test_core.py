"""The core path: a code once, GetSessionToken with MFA, the session cached in the
OS keyring and handed out through credential_process, `env` and `exec`; the
settings, errors and store behaviour of SPEC.md, end to end against the MFA
test bed with the real AWS CLI and boto3."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from assertions import assert_error
from harness import CREDENTIAL_PROCESS_KEYS, missing, parse_rfc3339_z, sts_failed, sts_ok
from keyrings import (
    keyutils_keys,
    keyutils_read,
    keyutils_update,
    secret_service_items,
    secret_service_lookup,
    secret_service_replace,
)

HOUR = 3600


def assert_session(cred: dict, user, hours: float, slack: float = 120) -> None:
    """A credential_process answer for an MFA session of `user` lasting `hours`."""
    assert set(cred) == CREDENTIAL_PROCESS_KEYS, cred.keys()
    assert cred["Version"] == 1 and isinstance(cred["Version"], int)
    assert cred["AccessKeyId"].startswith("ASIA"), cred["AccessKeyId"]
    assert cred["AccessKeyId"] != user.access_key_id
    assert cred["SecretAccessKey"] and cred["SecretAccessKey"] != user.secret_access_key
    assert cred["SessionToken"]
    left = parse_rfc3339_z(cred["Expiration"]) - time.time()
    assert abs(left - hours * HOUR) < slack, f"expires in {left:.0f}s, wanted {hours}h"


def session_env(cred: dict, profile: str = "work", region: str | None = "us-east-1") -> dict:
    want = {
        "AWS_ACCESS_KEY_ID": cred["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": cred["SecretAccessKey"],
        "AWS_SESSION_TOKEN": cred["SessionToken"],
        "AWS_CREDENTIAL_EXPIRATION": cred["Expiration"],
        "STSMFA_PROFILE": profile,
    }
    if region:  # the SDKs and CLI v2 read AWS_REGION, the CLI v1 AWS_DEFAULT_REGION
        want["AWS_REGION"] = region
        want["AWS_DEFAULT_REGION"] = region
    return want


# ---------------------------------------------------------------------------
# credential-process and the cache


def test_credential_process_prints_session_json_and_caches_it(home, user, bed, store):
    prof = home.add_source_profile("work", user)

    first = home.run("credential-process", "work", "-v")
    assert first.returncode == 0, first.stderr
    # stdout is the JSON object and nothing else
    cred = json.loads(first.stdout)
    # exactly SPEC's compact object, keys in SPEC's order
    order = ["Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]
    assert first.stdout.rstrip("\n") == json.dumps({k: cred.get(k) for k in order}, separators=(",", ":"))
    assert_session(cred, user, hours=12)
    assert "cache miss" in first.stderr.lower(), first.stderr
    assert sts_ok(bed, user) == 1
    assert home.calls(prof.log) == 1

    second = home.run("credential-process", "work", "-v")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == cred
    assert "cache hit" in second.stderr.lower(), second.stderr
    assert sts_ok(bed, user) == 1, "a cache hit called STS"
    assert home.calls(prof.log) == 1, "a cache hit asked for a code"

    info = bed.session_info(cred["AccessKeyId"])
    assert info and info["user"] == user.name and info["mfa"] is True


def test_duration_option_is_honoured(home, user):
    home.add_source_profile("work", user)
    assert_session(home.credential_process("work", "--duration", "1h"), user, hours=1)


def test_refresh_gets_a_new_session(home, user, bed):
    prof = home.add_source_profile("work", user)
    a = home.credential_process("work")
    # a second code in the same 30 s: passed as a fixed code (a code from
    # mfa_process or the prompt would wait for the next step, by design)
    b = home.credential_process("work", "--refresh", "--mfa-code", home.code(user))
    assert a["AccessKeyId"] != b["AccessKeyId"]
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 2
    # the refreshed session is the cached one now
    assert home.credential_process("work") == b


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


def test_aws_cli_through_credential_process_asks_one_code(home, user, bed, aws_cli):
    prof = home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")

    lu = home.aws("iam", "list-users", profile="work-mfa")
    assert lu.returncode == 0, lu.stderr
    assert "Users" in json.loads(lu.stdout)
    who = home.aws("sts", "get-caller-identity", profile="work-mfa")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"] == user.arn
    again = home.aws("iam", "list-users", profile="work-mfa")
    assert again.returncode == 0, again.stderr

    assert home.calls(prof.log) == 1
    assert sts_ok(bed, user) == 1


def test_boto3_session_through_credential_process(home, user, bed, boto3_available):
    prof = home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    cp = home.boto3(
        """
        import json, boto3
        s = boto3.Session(profile_name="work-mfa")
        users = s.client("iam").list_users()["Users"]
        who = s.client("sts").get_caller_identity()
        key = s.get_credentials().get_frozen_credentials().access_key
        print(json.dumps({"arn": who["Arn"], "key": key, "n": len(users)}))
        """
    )
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["arn"] == user.arn
    assert out["key"].startswith("ASIA")
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


# ---------------------------------------------------------------------------
# env


@pytest.mark.parametrize("shell", ["bash", "zsh", "sh"])
def test_env_eval_in_posix_shells(home, user, shell, aws_cli):
    if not shutil.which(shell, path=home.env["PATH"]):
        missing(f"{shell} not installed")
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    cp = home.sh(
        r"""
        export AWS_PROFILE=work-mfa AWS_SECURITY_TOKEN=stale
        out=$(stsmfa env work) || exit 90
        printf '%s\n' "$out" > /dev/null
        eval "$out" || exit 91
        [ -z "${AWS_PROFILE+x}" ] || { echo "AWS_PROFILE still set" >&2; exit 92; }
        [ -z "${AWS_SECURITY_TOKEN+x}" ] || { echo "AWS_SECURITY_TOKEN still set" >&2; exit 93; }
        [ "$STSMFA_PROFILE" = work ] || exit 94
        [ "$AWS_REGION" = us-east-1 ] || { echo "AWS_REGION=$AWS_REGION" >&2; exit 95; }
        aws iam list-users --output json > /dev/null || exit 96
        aws sts get-caller-identity --output json
        """,
        shell=shell,
    )
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    assert json.loads(cp.stdout)["Arn"] == user.arn


def test_env_sh_output_passes_sh_n(home, user):
    home.add_source_profile("work", user)
    out = home.run("env", "work")
    assert out.returncode == 0, out.stderr
    chk = subprocess.run(["sh", "-n"], input=out.stdout, capture_output=True, text=True)
    assert chk.returncode == 0, chk.stderr


def test_env_fish(home, user, fish, aws_cli):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    out = home.run("env", "work", "--format", "fish")
    assert out.returncode == 0, out.stderr
    chk = subprocess.run([fish, "-n"], input=out.stdout, capture_output=True, text=True)
    assert chk.returncode == 0, f"fish -n: {chk.stderr}\n"
    cp = home.sh(
        """
        set -gx AWS_PROFILE work-mfa
        stsmfa env work --format fish | source
        test $pipestatus[1] -eq 0; or exit 90
        set -q AWS_PROFILE; and exit 91
        test "$STSMFA_PROFILE" = work; or exit 92
        aws iam list-users --output json > /dev/null; or exit 93
        aws sts get-caller-identity --output json
        """,
        shell="fish",
    )
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    assert json.loads(cp.stdout)["Arn"] == user.arn


def _unquote_sh_word(v: str) -> str:
    import shlex

    parts = shlex.split(v)
    assert len(parts) == 1, v
    return parts[0]


def parse_env_output(fmt: str, text: str) -> tuple[dict, set]:
    """(assigned, unset) variables of an `env --format FMT` output, parsed
    strictly enough to catch quoting mistakes."""
    assigned: dict[str, str] = {}
    unset: set[str] = set()
    if fmt == "json":
        data = json.loads(text)
        assert isinstance(data, dict), text
        for k, v in data.items():
            if v is None:
                unset.add(k)
            else:
                assert isinstance(v, str), (k, v)
                assigned[k] = v
        return assigned, unset
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if fmt == "dotenv":
            m = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
            assert m, f"not a dotenv line: {line!r}"
            v = m.group(2)
            if v[:1] in ("'", '"'):
                assert v[-1:] == v[:1] and len(v) >= 2, f"unbalanced quotes: {line!r}"
                v = v[1:-1]
            assigned[m.group(1)] = v
        elif fmt == "powershell":
            m = re.fullmatch(r"\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'((?:[^']|'')*)'\s*;?", s)
            if m:
                assigned[m.group(1)] = m.group(2).replace("''", "'")
                continue
            m = re.fullmatch(r'\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"`$]*)"\s*;?', s)
            if m:
                assigned[m.group(1)] = m.group(2)
                continue
            m = re.fullmatch(
                r"(?i:Remove-Item)\s+(?:-Path\s+)?(?:-LiteralPath\s+)?'?(?i:env):\\?([A-Za-z_][A-Za-z0-9_]*)'?.*", s
            ) or re.fullmatch(r"\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*\$null\s*;?", s)
            assert m, f"not a PowerShell assignment or removal: {line!r}"
            unset.add(m.group(1))
        else:
            raise AssertionError(fmt)
    return assigned, unset


@pytest.mark.parametrize("fmt", ["sh", "fish", "powershell", "dotenv", "json"])
def test_env_every_format_carries_the_session(home, user, fmt):
    home.add_source_profile("work", user)
    cred = home.credential_process("work")
    out = home.run("env", "work", "--format", fmt)
    assert out.returncode == 0, out.stderr
    want = session_env(cred)
    if fmt in ("sh", "fish"):
        shell = "sh" if fmt == "sh" else "fish"
        if not shutil.which(shell, path=home.env["PATH"]):
            missing(f"{shell} not installed")
        n = subprocess.run([shell, "-n"], input=out.stdout, capture_output=True, text=True)
        assert n.returncode == 0, f"{shell} -n: {n.stderr}"
        names = " ".join(f'"${k}"' for k in want)
        if fmt == "sh":
            script = out.stdout + f"\nprintf '%s\\n' {names}\n[ -z \"${{AWS_PROFILE+x}}\" ] || echo PROFILE-SET\n"
        else:
            script = out.stdout + f"\nprintf '%s\\n' {names}\nset -q AWS_PROFILE; and echo PROFILE-SET\ntrue\n"
        got = home.sh(script, shell=shell, env={"AWS_PROFILE": "stale"})
        assert got.returncode == 0, got.stderr
        lines = got.stdout.splitlines()
        assert "PROFILE-SET" not in lines
        assert lines[: len(want)] == list(want.values())
        return
    if fmt == "powershell":
        pwsh = shutil.which("pwsh")  # optional: the strict parse below always runs
        if pwsh:
            names = ";".join(f"Write-Output $Env:{k}" for k in want)
            got = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", out.stdout + "\n" + names],
                                 capture_output=True, text=True, env=home.env)
            assert got.returncode == 0, got.stderr
            assert got.stdout.splitlines() == list(want.values())
    assigned, unset = parse_env_output(fmt, out.stdout)
    for k, v in want.items():
        assert assigned.get(k) == v, f"{k}: {assigned.get(k)!r} != {v!r}"
    if fmt == "powershell":
        assert {"AWS_PROFILE", "AWS_SECURITY_TOKEN"} <= unset, unset


# ---------------------------------------------------------------------------
# exec


def test_exec_passes_exit_code_and_signals(home, user):
    home.add_source_profile("work", user)
    ok = home.run("exec", "work", "--", "sh", "-c", "exit 7")
    assert ok.returncode == 7, ok.stderr
    sig = home.run("exec", "work", "--", "sh", "-c", "kill -TERM $$")
    # 143 from stsmfa, or death by the same signal when it exec()s the child
    assert sig.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), sig.stderr
    in_shell = home.sh("stsmfa exec work -- sh -c 'kill -TERM $$'; echo \"rc=$?\"")
    assert in_shell.stdout.strip().endswith("rc=143"), in_shell


def test_exec_child_sees_the_session(home, user, aws_cli):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    cred = home.credential_process("work")
    cp = home.run(
        "exec", "work", "--", "sh", "-c",
        'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" '
        '"$AWS_CREDENTIAL_EXPIRATION" "$STSMFA_PROFILE" "$AWS_REGION" "$AWS_DEFAULT_REGION" '
        '"${AWS_PROFILE-unset}"',
        env={"AWS_PROFILE": "work-mfa"},
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines() == [*session_env(cred).values(), "unset"]
    lu = home.run("exec", "work", "--", "aws", "iam", "list-users", "--output", "json")
    assert lu.returncode == 0, lu.stderr
    assert "Users" in json.loads(lu.stdout)


def test_exec_forwards_sigterm_to_the_child(home, user):
    home.add_source_profile("work", user)
    home.credential_process("work")  # warm the cache: no code needed below
    p = subprocess.Popen(
        [str(home.bin), "exec", "work", "--", "sh", "-c",
         'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'],
        env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)  # to stsmfa only, not the process group
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert rc == 42, f"exit {rc}: {p.stderr.read()}"


# ---------------------------------------------------------------------------
# status and clear


def test_status_and_clear(home, user, bed, store):
    prof = home.add_source_profile("work", user)
    cred = home.credential_process("work")
    akid = cred["AccessKeyId"]

    entries = home.status_for(user)
    assert len(entries) == 1, entries
    e = entries[0]
    assert e["profile"] == "work"
    assert e["mfa_serial"] == user.serial
    assert e["store"] == store
    assert e["access_key_id"] != akid
    assert re.fullmatch(r"ASIA…[A-Z0-9]{4}", e["access_key_id"]), e["access_key_id"]
    assert e["access_key_id"].endswith(akid[-4:])
    assert e["expiration"] == cred["Expiration"]
    assert abs(e["seconds_left"] - 12 * HOUR) < 120, e
    # only the profile's own entries with PROFILE
    assert [x["mfa_serial"] for x in home.status("work") if x["mfa_serial"] == user.serial] == [user.serial]

    text = home.run("status")
    assert text.returncode == 0, text.stderr
    assert "work" in text.stdout
    for out in (text.stdout, text.stderr, json.dumps(entries)):
        assert cred["SecretAccessKey"] not in out and cred["SessionToken"] not in out and akid not in out

    cl = home.run("clear", "work")
    assert cl.returncode == 0, cl.stderr
    assert home.status_for(user) == []
    again = home.credential_process("work", "--mfa-code", home.code(user))
    assert again["AccessKeyId"] != akid
    assert sts_ok(bed, user) == 2


def test_clear_all(home, make_user):
    if not os.environ.get("STSMFA_E2E_PRIVATE_KEYRINGS"):
        missing("clear --all would empty the real keyrings: run through tests/run.sh (private ones)")
    a, b = make_user(), make_user()
    home.add_source_profile("one", a)
    home.add_source_profile("two", b)
    home.credential_process("one")
    home.credential_process("two")
    assert len(home.status_for(a)) == 1 and len(home.status_for(b)) == 1
    cl = home.run("clear", "--all")
    assert cl.returncode == 0, cl.stderr
    assert home.status_for(a) == [] and home.status_for(b) == []


# ---------------------------------------------------------------------------
# settings


def test_duration_precedence_option_env_profile(home, make_user):
    users = [make_user() for _ in range(3)]
    for i, u in enumerate(users):
        home.add_source_profile(f"p{i}", u, extra={"stsmfa_duration": "2h"})
    assert_session(home.credential_process("p0"), users[0], hours=2)
    assert_session(home.credential_process("p1", env={"STSMFA_DURATION": "3h"}), users[1], hours=3)
    assert_session(
        home.credential_process("p2", "--duration", "4h", env={"STSMFA_DURATION": "3h"}), users[2], hours=4
    )


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


def test_mfa_code_option_and_env(home, make_user, bed):
    a, b = make_user(), make_user()
    home.add_source_profile("opt", a, mfa_process=False)
    home.add_source_profile("env", b, mfa_process=False)
    cp = home.run("credential-process", "opt", "--mfa-code", home.code(a))
    assert cp.returncode == 0, cp.stderr
    assert_session(json.loads(cp.stdout), a, hours=12)
    cp = home.run("credential-process", "env", env={"STSMFA_MFA_CODE": home.code(b)})
    assert cp.returncode == 0, cp.stderr
    assert_session(json.loads(cp.stdout), b, hours=12)
    assert sts_ok(bed, a) == 1 and sts_ok(bed, b) == 1


def test_mfa_code_sources_precedence(home, make_user):
    """--mfa-code and STSMFA_MFA_CODE win over the profile's mfa_process."""
    a, b = make_user(), make_user()
    log_a, log_b = home.tools / "a.log", home.tools / "b.log"
    home.add_source_profile("opt", a, mfa_process=home.mfa_process(a, log_a, mode="fail"))
    home.add_source_profile("env", b, mfa_process=home.mfa_process(b, log_b, mode="fail"))
    cp = home.run("credential-process", "opt", "--mfa-code", home.code(a), env={"STSMFA_MFA_CODE": "000000"})
    assert cp.returncode == 0, cp.stderr
    cp = home.run("credential-process", "env", env={"STSMFA_MFA_CODE": home.code(b)})
    assert cp.returncode == 0, cp.stderr
    assert home.calls(log_a) == 0 and home.calls(log_b) == 0


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 345"])
def test_malformed_code_is_an_error_without_sts_call(home, user, bed, code):
    home.add_source_profile("work", user, mfa_process=False)
    cp = home.run("credential-process", "work", "--mfa-code", code)
    assert_error(cp, code=(1, 2))
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


def test_no_terminal_no_code_fails_at_once_naming_the_three_ways(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    t0 = time.monotonic()
    cp = home.run("credential-process", "work", timeout=30)
    took = time.monotonic() - t0
    assert_error(cp, "--mfa-code", "STSMFA_MFA_CODE", "mfa_process")
    assert took < 5, f"took {took:.1f}s"
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


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


def test_missing_profile_is_a_clear_error(home, user):
    home.add_source_profile("work", user)
    cp = home.run("credential-process", "nosuch", "--mfa-code", "123456")
    assert_error(cp, "nosuch")


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


def test_wrong_code_is_an_error_and_nothing_is_cached(home, user, bed):
    log = home.tools / "wrong.log"
    home.add_source_profile("work", user, mfa_process=home.mfa_process(user, log, mode="wrong"))
    cp = home.run("credential-process", "work")
    assert_error(cp, "code")
    assert sts_failed(bed, user) >= 1 and sts_ok(bed, user) == 0
    assert home.calls(log) == 1, "not a terminal: a rejected code must not be asked again"
    assert home.status_for(user) == []


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


# ---------------------------------------------------------------------------
# the store


def _entries(store: str, env: dict, needle: str) -> list:
    """Store entries of stsmfa whose name mentions `needle`:
    attribute dicts (Secret Service) or (key id, description) (keyutils)."""
    if store == "secret-service":
        return [a for a in secret_service_items(env).values() if any(needle in v for v in a.values())]
    return [(k, d) for k, d in keyutils_keys(env).items() if needle in d and d.endswith("stsmfa")]


def _corrupt(store: str, env: dict, entry, garbage: str = "not json {{{") -> None:
    if store == "secret-service":
        assert entry.get("service") == "stsmfa", entry
        stored = secret_service_lookup(env, entry)
        assert stored and len(stored.encode()) < 2500, "entry missing or over 2,500 bytes"
        json.loads(stored)  # compact JSON
        secret_service_replace(env, entry, garbage)
        assert secret_service_lookup(env, entry) == garbage
        same = [a for a in secret_service_items(env).values() if all(a.get(k) == v for k, v in entry.items())]
        assert len(same) == 1, same
    else:
        kid, _desc = entry
        stored = keyutils_read(kid, env)
        assert stored and len(stored.encode()) < 2500, "entry missing or over 2,500 bytes"
        json.loads(stored)
        keyutils_update(kid, garbage, env)
        assert keyutils_read(kid, env) == garbage


def test_corrupt_store_entry_is_a_miss_and_is_overwritten(home, user, bed, store):
    prof = home.add_source_profile("work", user)
    first = home.credential_process("work")
    entries = _entries(store, home.env, user.serial)
    assert len(entries) == 1, f"expected one entry naming {user.serial}: {entries}"
    _corrupt(store, home.env, entries[0])

    second = home.run("credential-process", "work", "-v", "--mfa-code", home.code(user))
    assert second.returncode == 0, second.stderr
    cred = json.loads(second.stdout)
    assert cred["AccessKeyId"] != first["AccessKeyId"]
    assert sts_ok(bed, user) == 2
    assert "not json" not in second.stderr

    # overwritten: the next call is a hit on the new session
    third = home.run("credential-process", "work", "-v")
    assert third.returncode == 0 and json.loads(third.stdout) == cred
    assert "cache hit" in third.stderr.lower(), third.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 2


def test_corrupt_index_breaks_nothing(home, user, store):
    """The index entry (the list of sessions for `status`) turned to garbage is
    a miss too, never a failure."""
    home.add_source_profile("work", user)
    cred = home.credential_process("work")
    others = [e for e in _entries(store, home.env, "") if ":mfa/" not in str(e)]
    assert others, "stsmfa keeps an index entry beside the sessions"
    for e in others:
        _corrupt(store, home.env, e, garbage="[garbage")
    again = home.run("credential-process", "work")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == cred
    st = home.run("status", "--json")
    assert st.returncode == 0, st.stderr
    assert isinstance(json.loads(st.stdout), list)
    assert home.run("status").returncode == 0
    assert home.run("clear", "work").returncode == 0


def test_store_none_warns_and_asks_every_time(home, user, bed):
    prof = home.add_source_profile("work", user)
    env = {"STSMFA_STORE": "none"}
    runs = [
        home.run("credential-process", "work", env=env),
        home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": home.code(user)}),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert_session(json.loads(r.stdout), user, hours=12)
        warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln.lower()]
        assert len(warnings) == 1, r.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 2
    assert home.status_for(user, env=env) == []
