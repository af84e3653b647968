"""Role profiles: one MFA code for every role.

A role profile (`role_arn` + `source_profile`) is served from the source
profile's MFA session (GetSessionToken, cached and locked as for the source
itself), then AssumeRole with that session's credentials; a role asked for
more than an hour is assumed with the long-term keys and a code of its own.
Against the bed, whose roles evaluate trust policies as AWS does."""

from __future__ import annotations

import json
import shutil

from mfa_bed import policies

from harness import assert_error, sts_ok, unique_name
from helpers_more import assert_one_error_with_hint, run_parallel

PROD = "444455556666"
DEV = "123456789012"


def assumed(bed, caller: str) -> int:
    """AssumeRole calls made by `caller` (a user name, or an assumed-role ARN)."""
    return bed.stats().get("assume_role", {}).get(caller, 0)


def assume_failed(bed, caller: str) -> int:
    return bed.stats().get("assume_role_failed", {}).get(caller, 0)


def make_role(bed, user, account: str = PROD, max_session_duration: int = 3600, trust=None, **trust_kw):
    """A role in `account` trusting `user` with MFA, allowed iam:ListRoles with MFA."""
    return bed.create_role(
        unique_name("Admin"),
        trust or policies.trust_user(user.arn, **trust_kw),
        policies.allow_actions(["iam:ListRoles", "sts:AssumeRole"], require_mfa=True),
        account=account,
        max_session_duration=max_session_duration,
    )


def add_role_profile(home, name: str, role, source: str = "work", **extra) -> None:
    """`[profile NAME]` with role_arn + source_profile, and `NAME-mfa` whose
    credential_process is stsmfa's, as the issue shows them."""
    cfg = {"role_arn": role.arn, "source_profile": source, "region": "us-east-1"}
    cfg.update({k: str(v) for k, v in extra.items()})
    home.set_config(f"profile {name}", cfg)
    home.add_process_profile(f"{name}-mfa", name)


def creds_env(cred: dict) -> dict:
    return {
        "AWS_ACCESS_KEY_ID": cred["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": cred["SecretAccessKey"],
        "AWS_SESSION_TOKEN": cred["SessionToken"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def caller_arn(home, **kw) -> str:
    cp = home.aws("sts", "get-caller-identity", **kw)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["Arn"]


def listed_roles(cp) -> list[str]:
    assert cp.returncode == 0, cp.stderr
    return [r["RoleName"] for r in json.loads(cp.stdout)["Roles"]]


# ---------------------------------------------------------------------------
# The default path


def test_a_role_requiring_mfa_is_assumed_through_stsmfa_by_every_route(home, user, bed, aws_cli, boto3_available):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user)
    add_role_profile(home, "prod-admin", role)

    # The AWS CLI through credential_process.
    arn = caller_arn(home, profile="prod-admin-mfa")
    assert arn.startswith(f"arn:aws:sts::{PROD}:assumed-role/{role.name}/"), arn
    assert role.name in listed_roles(home.aws("iam", "list-roles", profile="prod-admin-mfa"))

    cred = home.credential_process("prod-admin")
    info = bed.session_info(cred["AccessKeyId"])
    assert info["role_arn"] == role.arn and info["mfa"] is True, info
    assert info["account"] == PROD and info["user"] == user.name, info

    # boto3, env and exec: the same cached role session.
    cp = home.boto3(
        """
        import boto3
        s = boto3.Session(profile_name="prod-admin-mfa")
        print(s.client("sts").get_caller_identity()["Arn"])
        """
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == info["arn"], cp.stdout
    cp = home.sh('eval "$(stsmfa env prod-admin)" || exit 90; aws sts get-caller-identity --output json')
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["Arn"] == info["arn"]
    cp = home.run("exec", "prod-admin", "--", "sh", "-c", 'printf %s "$AWS_ACCESS_KEY_ID $STSMFA_PROFILE"')
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == f"{cred['AccessKeyId']} prod-admin", cp.stdout
    cp = home.run("exec", "prod-admin", "--", "aws", "iam", "list-roles", "--output", "json")
    assert role.name in listed_roles(cp)

    # One code, one GetSessionToken, one AssumeRole, whatever ran.
    assert home.calls(prof.log) == 1
    assert sts_ok(bed, user) == 1 and assumed(bed, user.name) == 1


def test_the_same_role_with_the_long_term_keys_is_denied(home, user, bed, aws_cli):
    home.add_source_profile("work", user)
    role = make_role(bed, user)
    # The AWS CLI's own AssumeRole with the keys and no MFA.
    home.set_config("profile cli-admin", {"role_arn": role.arn, "source_profile": "work", "region": "us-east-1"})
    cp = home.aws("sts", "get-caller-identity", profile="cli-admin")
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr, cp.stderr
    cp = home.aws("sts", "assume-role", "--role-arn", role.arn, "--role-session-name", "keys", profile="work")
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr, cp.stderr
    assert assumed(bed, user.name) == 0 and assume_failed(bed, user.name) == 2


def test_a_role_in_the_users_own_account_works_too(home, user, bed, aws_cli):
    home.add_source_profile("work", user)
    role = make_role(bed, user, account=DEV, trust=policies.trust_account(DEV))
    add_role_profile(home, "dev-admin", role)
    assert caller_arn(home, profile="dev-admin-mfa").startswith(f"arn:aws:sts::{DEV}:assumed-role/{role.name}/")


def test_refreshing_a_role_session_while_the_mfa_session_is_valid_asks_nothing(home, user, bed):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user)
    add_role_profile(home, "prod-admin", role)
    first = home.credential_process("prod-admin")
    again = home.credential_process("prod-admin", "--refresh")
    assert again["AccessKeyId"] != first["AccessKeyId"]
    home.run("clear", "prod-admin")
    third = home.credential_process("prod-admin")
    assert third["AccessKeyId"] not in (first["AccessKeyId"], again["AccessKeyId"])
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
    assert assumed(bed, user.name) == 3


def test_one_code_for_five_roles_in_three_accounts(home, user, bed):
    prof = home.add_source_profile("work", user)
    names = []
    for n, account in enumerate([PROD, PROD, DEV, "777788889999", "777788889999"]):
        role = make_role(bed, user, account=account)
        add_role_profile(home, f"r{n}", role)
        names.append((f"r{n}", role))
    for name, role in names:
        info = bed.session_info(home.credential_process(name)["AccessKeyId"])
        assert info["role_arn"] == role.arn and info["mfa"] is True
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
    assert assumed(bed, user.name) == 5


# ---------------------------------------------------------------------------
# Many processes at once


def test_32_parallel_cold_calls_over_4_role_profiles_ask_one_code(home, user, bed):
    log = home.tools / "codes.log"
    home.add_source_profile("work", user, mfa_process=f"sleep 0.5; {home.mfa_process(user, log)}")
    roles = {}
    for n in range(4):
        roles[f"role{n}"] = make_role(bed, user, account=PROD if n % 2 else DEV)
        add_role_profile(home, f"role{n}", roles[f"role{n}"])

    argvs = [[str(home.bin), "credential-process", f"role{i % 4}"] for i in range(32)]
    results = run_parallel(argvs, home.env, home.root, timeout=90)

    failed = [r for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)} of 32 failed: {failed[:3]}"
    keys: dict[str, set[str]] = {}
    for r in results:
        keys.setdefault(r.args[-1], set()).add(json.loads(r.stdout)["AccessKeyId"])
    assert all(len(k) == 1 for k in keys.values()), f"a role got several sessions: {keys}"
    for name, (key,) in keys.items():
        assert bed.session_info(key)["role_arn"] == roles[name].arn
    assert home.calls(log) == 1, f"{home.calls(log)} codes were asked for"
    assert sts_ok(bed, user) == 1, bed.stats()
    assert assumed(bed, user.name) == 4 and assume_failed(bed, user.name) == 0, bed.stats()


# ---------------------------------------------------------------------------
# Cache hits in the small binary


def test_a_role_profile_cache_hit_needs_only_stsmfa_and_calls_no_sts(home, user, bed, tmp_path):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user)
    add_role_profile(home, "prod-admin", role)
    first = home.credential_process("prod-admin-mfa")
    before = bed.stats()

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(home.bin, lone / "stsmfa")  # without stsmfa-sts beside it
    for name in ("prod-admin", "prod-admin-mfa"):
        hit = home._run([str(lone / "stsmfa"), "-v", "credential-process", name])
        assert hit.returncode == 0, hit.stderr
        assert json.loads(hit.stdout) == first
        assert "cache hit: role profile prod-admin" in hit.stderr, hit.stderr
        assert "handing over" not in hit.stderr, hit.stderr
    assert bed.stats() == before, "a cache hit called STS"
    assert home.calls(prof.log) == 1

    # A role miss is handed over, and says which binary is missing.
    miss = home._run([str(lone / "stsmfa"), "credential-process", "prod-admin", "--refresh"])
    assert miss.returncode == 1
    assert miss.stderr.startswith("stsmfa: error: cannot run "), miss.stderr
    assert bed.stats() == before


# ---------------------------------------------------------------------------
# status and clear


def test_status_lists_role_sessions_and_clearing_the_source_clears_them(home, user, bed):
    home.add_source_profile("work", user)
    role = make_role(bed, user)
    other = make_role(bed, user, account=DEV)
    add_role_profile(home, "prod-admin", role)
    add_role_profile(home, "dev-admin", other)
    home.credential_process("prod-admin")
    home.credential_process("dev-admin")

    rows = {r["profile"]: r for r in home.status_for(user)}
    assert set(rows) == {"work", "prod-admin", "dev-admin"}, rows
    assert rows["prod-admin"]["role_arn"] == role.arn and rows["prod-admin"]["source_profile"] == "work"
    assert rows["dev-admin"]["role_arn"] == other.arn
    assert "role_arn" not in rows["work"]
    assert {r["profile"] for r in home.status("prod-admin-mfa")} == {"prod-admin"}
    assert {r["profile"] for r in home.status_for(user, "work")} == {"work", "prod-admin", "dev-admin"}

    text = home.run("status")
    assert text.returncode == 0, text.stderr
    header = text.stdout.splitlines()[0].split()
    assert header[-2:] == ["SOURCE", "ROLE"], text.stdout
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("prod-admin "))
    assert line.split()[-2:] == ["work", role.arn], line

    # Clearing one role leaves the rest; clearing the source clears its roles.
    cp = home.run("clear", "dev-admin")
    assert cp.returncode == 0 and "role session of profile dev-admin" in cp.stderr, cp.stderr
    assert {r["profile"] for r in home.status_for(user)} == {"work", "prod-admin"}
    cp = home.run("clear", "work")
    assert cp.returncode == 0, cp.stderr
    assert "prod-admin" in cp.stderr, cp.stderr
    assert home.status_for(user) == []
