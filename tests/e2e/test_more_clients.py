"""More real consumers of stsmfa's credentials, each pinned and installed by
tests/run.sh: the AWS CLI v2 (Debian's `awscli`, /usr/bin/aws) through
`credential_process` and `aws configure export-credentials`; the AWS SDK for
JavaScript v3 (tests/e2e/js) with `fromIni` and, under `stsmfa env` / `exec`,
`fromEnv`; the AWS SDK for Rust (crates/rust-sdk-client) through
`credential_process`, on a cache hit, on a miss within a 5-second provider
limit, and cut short by it when the code source is slower.

Each runs against the bed with AWS's MFA-enforcing policy: the long-term keys
are denied AssumeRole, stsmfa's session is allowed, and all clients together
cost one code."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from harness import REPO, Home, missing, parse_rfc3339_z, sts_ok, unique_name

AWS_V2 = "/usr/bin/aws"
JS_DIR = REPO / "tests" / "e2e" / "js"
JS_CLIENT = JS_DIR / "sts_client.mjs"
RUST_CLIENT = REPO / "target" / "debug" / "rust-sdk-client"


# ---------------------------------------------------------------- the clients


@pytest.fixture(scope="session")
def aws_v2() -> str:
    try:
        out = subprocess.run([AWS_V2, "--version"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        missing(f"{AWS_V2} not found (apt-get install awscli; tests/run.sh does)")
    if not out.stdout.startswith("aws-cli/2."):
        missing(f"{AWS_V2} is not the AWS CLI v2: {out.stdout.strip()} {out.stderr.strip()}")
    return AWS_V2


@pytest.fixture(scope="session")
def js_sdk() -> None:
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        missing("the AWS SDK for JavaScript v3 is not installed in tests/e2e/js (tests/run.sh runs npm ci)")
    if subprocess.run(["node", "--version"], capture_output=True).returncode != 0:
        missing("node not found (apt-get install nodejs)")


@pytest.fixture(scope="session")
def rust_sdk() -> None:
    if not RUST_CLIENT.is_file():
        missing(f"{RUST_CLIENT} not built (cargo build -p stsmfa-rust-sdk-client; tests/run.sh does)")


def v2(home: Home, *args: str, profile: str, timeout: float = 90):
    """The AWS CLI v2: 2.9 predates AWS_ENDPOINT_URL, so --endpoint-url."""
    argv = [AWS_V2, *args, "--profile", profile, "--endpoint-url", home.bed.endpoint, "--output", "json"]
    return home._run(argv, env={"AWS_PAGER": ""}, timeout=timeout)


def js(home: Home, *args: str, env=None, timeout: float = 60):
    return home._run(["node", str(JS_CLIENT), *args], env=env, timeout=timeout)


def rust(home: Home, profile: str, role_arn: str, timeout: float = 60, load_timeout: int | None = None):
    """The Rust client; `load_timeout` sets its identity cache's limit, as a tool
    may (and as older SDK releases did by default: 5 s)."""
    env = {"RUST_SDK_LOAD_TIMEOUT": str(load_timeout)} if load_timeout else None
    return home._run([str(RUST_CLIENT), profile, role_arn], env=env, timeout=timeout)


def kv(stdout: str) -> dict:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def mfa_role(bed, user):
    """A role trusting `user` only with MFA; the user's policy denies AssumeRole without it."""
    from mfa_bed import policies

    return bed.create_role(unique_name("r"), policies.trust_user(user.arn))


def setup(home: Home, user, **kwargs):
    prof = home.add_source_profile("work", user, **kwargs)
    home.add_process_profile("work-mfa", "work")
    return prof


# ---------------------------------------------------------------- all together


def test_five_clients_share_one_code(home, user, bed, aws_cli, boto3_available, aws_v2, js_sdk, rust_sdk):
    prof = setup(home, user)
    role = mfa_role(bed, user)

    # AWS's policy: the long-term keys alone are denied
    denied = home.aws("sts", "assume-role", "--role-arn", role.arn, "--role-session-name", "long-term", profile="work")
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr, denied.stderr

    keys = {}
    v1 = home.aws("sts", "assume-role", "--role-arn", role.arn, "--role-session-name", "v1", profile="work-mfa")
    assert v1.returncode == 0, v1.stderr
    assert json.loads(v1.stdout)["AssumedRoleUser"]["Arn"].endswith("/v1")

    b3 = home.boto3(f"""
        import boto3, json
        s = boto3.Session(profile_name="work-mfa")
        sts = s.client("sts")
        r = sts.assume_role(RoleArn={role.arn!r}, RoleSessionName="boto3")
        print(json.dumps({{"key": s.get_credentials().access_key, "arn": sts.get_caller_identity()["Arn"]}}))
    """)
    assert b3.returncode == 0, b3.stderr
    keys["boto3"] = json.loads(b3.stdout)["key"]

    who = v2(home, "sts", "get-caller-identity", profile="work-mfa")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"] == user.arn
    ar = v2(home, "sts", "assume-role", "--role-arn", role.arn, "--role-session-name", "v2", profile="work-mfa")
    assert ar.returncode == 0, ar.stderr
    exported = v2(home, "configure", "export-credentials", "--format", "process", profile="work-mfa")
    assert exported.returncode == 0, exported.stderr
    keys["aws-cli-v2"] = json.loads(exported.stdout)["AccessKeyId"]

    out = js(home, "ini", "work-mfa", role.arn)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert j["arn"] == user.arn and j["assumedRoleArn"].endswith("/js-sdk-client")
    keys["js-sdk"] = j["accessKeyId"]

    r = rust(home, "work-mfa", role.arn)
    assert r.returncode == 0, r.stderr
    got = kv(r.stdout)
    assert got["arn"] == user.arn and got["assumed_role_arn"].endswith("/rust-sdk-client")
    keys["rust-sdk"] = got["access_key_id"]

    cached = home.credential_process("work")["AccessKeyId"]
    assert set(keys.values()) == {cached}, keys
    assert home.calls(prof.log) == 1, "the clients together asked for more than one code"
    assert sts_ok(bed, user) == 1


# ---------------------------------------------------------------- AWS CLI v2


def test_aws_cli_v2_export_credentials_is_stsmfa_session(home, user, bed, aws_v2):
    prof = setup(home, user)
    exported = v2(home, "configure", "export-credentials", "--format", "process", profile="work-mfa")
    assert exported.returncode == 0, exported.stderr
    cred = json.loads(exported.stdout)
    ours = home.credential_process("work")
    # the same session (compared without printing it), the expiry in v2's own notation
    same = all(cred[k] == ours[k] for k in ("Version", "AccessKeyId", "SecretAccessKey", "SessionToken"))
    assert same, "export-credentials gave another session than stsmfa's"
    assert parse_rfc3339_z(ours["Expiration"]) == parse_rfc3339_z(cred["Expiration"].replace("+00:00", "Z"))
    env = v2(home, "configure", "export-credentials", "--format", "env-no-export", profile="work-mfa")
    assert env.returncode == 0, env.stderr
    assert f"AWS_ACCESS_KEY_ID={cred['AccessKeyId']}" in env.stdout.splitlines()
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


# ---------------------------------------------------------------- JavaScript


def test_js_sdk_under_env_and_exec(home, user, bed, js_sdk):
    prof = setup(home, user)
    role = mfa_role(bed, user)
    node = shlex.join(["node", str(JS_CLIENT), "env", role.arn])
    ran = home.sh(f'eval "$(stsmfa env work)" && {node}')
    assert ran.returncode == 0, ran.stderr
    via_env = json.loads(ran.stdout)
    ex = home.run("exec", "work", "--", "node", str(JS_CLIENT), "env", role.arn)
    assert ex.returncode == 0, ex.stderr
    via_exec = json.loads(ex.stdout)
    assert via_env["accessKeyId"] == via_exec["accessKeyId"] == home.credential_process("work")["AccessKeyId"]
    assert via_exec["arn"] == user.arn
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


# ---------------------------------------------------------------- Rust


def test_rust_sdk_cache_hit(home, user, bed, rust_sdk):
    prof = setup(home, user)
    role = mfa_role(bed, user)
    cached = home.credential_process("work")
    r = rust(home, "work-mfa", role.arn)
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)["access_key_id"] == cached["AccessKeyId"]
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


def test_rust_sdk_miss_with_mfa_process_within_its_5_seconds(home, user, bed, rust_sdk):
    prof = setup(home, user)
    role = mfa_role(bed, user)
    t0 = time.monotonic()
    r = rust(home, "work-mfa", role.arn, load_timeout=5)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)["arn"] == user.arn
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
    assert took < 15, f"took {took:.1f}s"


def test_rust_sdk_with_a_5_second_limit_needs_the_session_first(home, user, bed, rust_sdk):
    """README's advice for Rust-SDK tools with a short provider limit (5 s:
    older SDK releases, or a tool's own setting): a person cannot answer a
    prompt in time, so get the session first; the tool then hits the cache."""
    slow = home.tools / "slow-code"
    slow.write_text("#!/bin/sh\nsleep 8\nexec " + home.mfa_process(user, home.tools / "slow.log") + "\n")
    slow.chmod(0o755)
    setup(home, user, mfa_process=str(slow))
    role = mfa_role(bed, user)
    t0 = time.monotonic()
    r = rust(home, "work-mfa", role.arn, timeout=60, load_timeout=5)
    took = time.monotonic() - t0
    assert r.returncode != 0, r.stdout
    assert "timed out" in r.stderr.lower() or "timeout" in r.stderr.lower(), r.stderr
    assert took < 8, f"the 5 s limit did not cut the 8 s code source short ({took:.1f}s)"

    # the advice: `stsmfa credential-process work-mfa > /dev/null` first
    first = home.run("credential-process", "work-mfa", timeout=60)
    assert first.returncode == 0, first.stderr
    again = rust(home, "work-mfa", role.arn, load_timeout=5)
    assert again.returncode == 0, again.stderr
    assert kv(again.stdout)["access_key_id"] == json.loads(first.stdout)["AccessKeyId"]
