"""Role profiles: one MFA code for every role.

A role profile (`role_arn` + `source_profile`) is served from the source
profile's MFA session (GetSessionToken, cached and locked as for the source
itself), then AssumeRole with that session's credentials; a role asked for
more than an hour is assumed with the long-term keys and a code of its own.
Against the bed, whose roles evaluate trust policies as AWS does."""

from __future__ import annotations

import json
import re
import shutil

from mfa_bed import policies

from assertions import assert_error, error_lines
from harness import sts_ok, unique_name
from parallel import run_parallel


def assert_one_error_with_hint(cp, *needles):
    return assert_error(cp, *needles, hint=True)

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


# ---------------------------------------------------------------------------
# Chains, external IDs, both duration paths


def test_a_role_chain_of_depth_2_keeps_the_mfa_context(home, user, bed, aws_cli):
    prof = home.add_source_profile("work", user)
    first = make_role(bed, user)
    second = make_role(bed, user, account="777788889999", trust=policies.trust_role(first.arn))
    add_role_profile(home, "hop1", first)
    add_role_profile(home, "hop2", second, source="hop1")

    arn = caller_arn(home, profile="hop2-mfa")
    assert arn.startswith(f"arn:aws:sts::777788889999:assumed-role/{second.name}/"), arn
    assert second.name in listed_roles(home.aws("iam", "list-roles", profile="hop2-mfa"))
    cred = home.credential_process("hop2")
    info = bed.session_info(cred["AccessKeyId"])
    assert info["mfa"] is True and info["user"] == user.name, info
    hop1 = home.credential_process("hop1")  # cached on the way: a hit now
    hop1_arn = bed.session_info(hop1["AccessKeyId"])["arn"]
    assert info["assumed_by"] == hop1_arn, info
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
    assert assumed(bed, user.name) == 1 and assumed(bed, hop1_arn) == 1

    rows = {r["profile"]: r for r in home.status_for(user)}
    assert rows["hop2"]["source_profile"] == "work" and rows["hop2"]["role_arn"] == second.arn
    # Clearing the role in between clears the role chained on it.
    home.run("clear", "hop1")
    assert {r["profile"] for r in home.status_for(user)} == {"work"}


def test_external_id_right_and_wrong(home, user, bed):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user, external_id="acme-4711")
    add_role_profile(home, "right", role, external_id="acme-4711")
    add_role_profile(home, "wrong", role, external_id="acme-0000")
    add_role_profile(home, "none", role)

    info = bed.session_info(home.credential_process("right")["AccessKeyId"])
    assert info["role_arn"] == role.arn
    err = assert_one_error_with_hint(home.run("credential-process", "wrong"), "denied", role.arn, "external_id")
    assert "check external_id in [profile wrong]" in err, err
    err = assert_one_error_with_hint(home.run("credential-process", "none"), "denied")
    assert "set external_id in [profile none]" in err, err
    # A young MFA session is not renewed for a denial: one code in all.
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
    assert assume_failed(bed, user.name) == 2
    assert {r["profile"] for r in home.status_for(user)} == {"work", "right"}


def test_the_default_path_is_one_hour_with_no_code_of_its_own(home, user, bed):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user, max_session_duration=43200)
    add_role_profile(home, "prod", role)
    cp = home.run("-v", "credential-process", "prod")
    assert cp.returncode == 0, cp.stderr
    assert "default path" in cp.stderr and "MFA session of profile work" in cp.stderr, cp.stderr
    info = bed.session_info(json.loads(cp.stdout)["AccessKeyId"])
    assert 3500 <= info["expiration"] - info["issued"] <= 3600, info
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1 and assumed(bed, user.name) == 1


def test_the_long_path_assumes_the_role_with_the_keys_and_one_code(home, user, bed, aws_cli):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user, max_session_duration=43200)
    add_role_profile(home, "prod-long", role, duration_seconds=8 * 3600)
    cp = home.run("-v", "credential-process", "prod-long")
    assert cp.returncode == 0, cp.stderr
    assert "long path" in cp.stderr and "28800 s is more than the 1 hour" in cp.stderr, cp.stderr
    cred = json.loads(cp.stdout)
    info = bed.session_info(cred["AccessKeyId"])
    assert info["role_arn"] == role.arn and info["mfa"] is True, info
    assert 28700 <= info["expiration"] - info["issued"] <= 28800, info
    # The code went to AssumeRole: no MFA session was made.
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 0 and assumed(bed, user.name) == 1
    # Then cached for its lifetime, by every route.
    assert caller_arn(home, profile="prod-long-mfa") == info["arn"]
    assert home.credential_process("prod-long") == cred
    assert home.calls(prof.log) == 1 and assumed(bed, user.name) == 1
    assert {r["profile"] for r in home.status_for(user)} == {"prod-long"}


def test_more_than_an_hour_on_a_chained_role_is_an_error_before_any_call(home, user, bed):
    prof = home.add_source_profile("work", user)
    first = make_role(bed, user, max_session_duration=43200)
    second = make_role(bed, user, trust=policies.trust_role(first.arn), max_session_duration=43200)
    add_role_profile(home, "hop1", first)
    add_role_profile(home, "hop2", second, source="hop1", duration_seconds=7200)
    before = bed.stats()
    assert_one_error_with_hint(home.run("credential-process", "hop2"), "1 hour", "role chaining", "duration_seconds")
    cp = home.run("credential-process", "hop1", "--duration", "2h")  # long path for hop1: fine
    assert cp.returncode == 0, cp.stderr
    cp = home.run("credential-process", "hop2", "--duration", "2h")
    assert cp.returncode == 2, cp.stderr
    assert bed.stats()["assume_role"].get(user.name, 0) == before["assume_role"].get(user.name, 0) + 1
    assert home.calls(prof.log) == 1


# ---------------------------------------------------------------------------
# The MFA age


def age_in_index(home, profile: str, seconds: int) -> None:
    """Moves back when the cached MFA session of `profile` was signed in, as
    stsmfa's index (keyutils) records it: with the bed's age_session, as if
    `seconds` had passed."""
    from keyrings import keyutils_keys, keyutils_read, keyutils_update

    env = {**home.env, "STSMFA_STORE": "keyutils"}
    for kid, desc in keyutils_keys(env).items():
        name = desc.split(":", 1)[-1].rsplit("@", 1)[0]
        if not (name == "index" or name.startswith("index|")):
            continue
        page = json.loads(keyutils_read(kid, env))
        hit = False
        for line in page["l"]:
            if line["p"] == profile and "r" not in line and line.get("m"):
                line["m"] -= seconds
                hit = True
        if hit:
            keyutils_update(kid, json.dumps(page, separators=(",", ":")), env)
            return
    raise AssertionError(f"no index line for {profile}: {keyutils_keys(env)}")


def test_a_denial_with_an_old_mfa_session_gets_a_new_one_and_tries_once_more(home, user, bed, keyutils_ok):
    home.env["STSMFA_STORE"] = "keyutils"
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user, max_mfa_age=3600)
    add_role_profile(home, "prod", role)
    first = home.credential_process("prod")
    mfa = home.credential_process("work")
    bed.age_session(mfa["AccessKeyId"], 3700)
    age_in_index(home, "work", 3700)
    home.run("clear", "prod")

    cp = home.run("credential-process", "prod", timeout=90)
    assert cp.returncode == 0, cp.stderr
    assert "denied with an MFA session 37" in cp.stderr and "getting a new MFA session" in cp.stderr, cp.stderr
    cred = json.loads(cp.stdout)
    assert cred["AccessKeyId"] != first["AccessKeyId"]
    info = bed.session_info(cred["AccessKeyId"])
    assert info["role_arn"] == role.arn and info["mfa"] is True
    assert home.calls(prof.log) == 2 and sts_ok(bed, user) == 2
    assert assume_failed(bed, user.name) == 1 and assumed(bed, user.name) == 2
    assert home.credential_process("work")["AccessKeyId"] != mfa["AccessKeyId"], "the old MFA session was kept"


def test_a_role_still_denied_with_a_new_mfa_session_is_a_clear_error(home, user, make_user, bed, keyutils_ok):
    home.env["STSMFA_STORE"] = "keyutils"
    prof = home.add_source_profile("work", user)
    someone = make_user()
    role = make_role(bed, someone, max_mfa_age=3600)  # trusts someone else
    add_role_profile(home, "prod", role)
    # A young MFA session: denied at once, no new code.
    err = assert_one_error_with_hint(home.run("credential-process", "prod"), "denied")
    assert re.search(r"MFA [0-9] s old", err) and "trust policy" in err, err
    assert home.calls(prof.log) == 1
    mfa = home.credential_process("work")
    bed.age_session(mfa["AccessKeyId"], 3700)
    age_in_index(home, "work", 3700)

    cp = home.run("credential-process", "prod", timeout=90)
    # Why a second code is asked, then one error with its hints.
    assert cp.returncode == 1 and cp.stdout == "", cp.stderr
    assert cp.stderr.startswith("stsmfa: AssumeRole of "), cp.stderr
    assert "getting a new MFA session" in cp.stderr.splitlines()[0], cp.stderr
    (error,) = error_lines(cp.stderr)
    assert "denied" in error and "even with a new MFA session" in error and "the first try's was 37" in error, error
    after = cp.stderr[cp.stderr.index("stsmfa: error:"):].splitlines()[1:]
    assert after and all(ln.startswith("hint: ") for ln in after), cp.stderr
    assert "aws:MultiFactorAuthAge" in cp.stderr and "admin" in cp.stderr, cp.stderr
    assert home.calls(prof.log) == 2 and sts_ok(bed, user) == 2
    assert assume_failed(bed, user.name) == 3 and assumed(bed, user.name) == 0


# ---------------------------------------------------------------------------
# Configuration errors and AWS errors, each one line with a hint


def test_a_loop_in_source_profile_names_the_profiles(home, user, bed):
    home.add_source_profile("work", user)
    home.set_config("profile a", {"role_arn": "arn:aws:iam::444455556666:role/A", "source_profile": "b"})
    home.set_config("profile b", {"role_arn": "arn:aws:iam::444455556666:role/B", "source_profile": "c"})
    home.set_config("profile c", {"role_arn": "arn:aws:iam::444455556666:role/C", "source_profile": "a"})
    home.set_config("profile self", {"role_arn": "arn:aws:iam::444455556666:role/S", "source_profile": "self"})
    home.add_process_profile("a-mfa", "a")
    before = bed.stats()
    for args in (("credential-process", "a"), ("env", "a"), ("exec", "a", "--", "true"), ("credential-process", "a-mfa")):
        assert_one_error_with_hint(home.run(*args), "source_profile loop: a -> b -> c -> a")
    assert_one_error_with_hint(home.run("credential-process", "self"), "source_profile loop: self -> self")
    assert bed.stats() == before


def test_unsupported_and_broken_role_profiles_are_clear_errors(home, user, bed):
    home.add_source_profile("work", user)
    home.set_config("profile ec2", {"role_arn": "arn:aws:iam::444455556666:role/A", "credential_source": "Ec2InstanceMetadata"})
    home.set_config("profile web", {"role_arn": "arn:aws:iam::444455556666:role/A", "web_identity_token_file": "/t"})
    home.set_config("profile nosrc", {"role_arn": "arn:aws:iam::444455556666:role/A"})
    home.set_config("profile gone", {"role_arn": "arn:aws:iam::444455556666:role/A", "source_profile": "nowhere"})
    home.set_config("profile badarn", {"role_arn": "Admin", "source_profile": "work"})
    home.set_config("profile long", {"role_arn": "arn:aws:iam::444455556666:role/A", "source_profile": "work",
                                     "duration_seconds": "86400"})
    assert_one_error_with_hint(home.run("credential-process", "ec2"), "credential_source", "not support")
    assert_one_error_with_hint(home.run("credential-process", "web"), "web_identity_token_file", "not support")
    assert_one_error_with_hint(home.run("credential-process", "nosrc"), "no source_profile")
    assert_one_error_with_hint(home.run("credential-process", "gone"), "source_profile 'nowhere'")
    assert_one_error_with_hint(home.run("credential-process", "badarn"), "not a role ARN")
    assert_one_error_with_hint(home.run("credential-process", "long"), "out of range", "duration_seconds in [profile long]")


def test_a_role_that_does_not_exist_is_denied_with_hints(home, user, bed):
    home.add_source_profile("work", user)
    home.set_config("profile ghost", {"role_arn": f"arn:aws:iam::{PROD}:role/{unique_name('Ghost')}",
                                      "source_profile": "work", "region": "us-east-1"})
    err = assert_one_error_with_hint(home.run("credential-process", "ghost"), "denied", "AssumeRole")
    assert "does not exist, or its trust policy" in err and "check role_arn in [profile ghost]" in err, err


def test_a_duration_over_the_roles_maximum_is_translated(home, user, bed):
    prof = home.add_source_profile("work", user)
    role = make_role(bed, user, max_session_duration=3600)
    add_role_profile(home, "prod", role, duration_seconds=7200)
    err = assert_one_error_with_hint(home.run("credential-process", "prod"), "allows no session as long as the 7200 s")
    assert "MaxSessionDuration" in err and "lower duration_seconds in [profile prod]" in err, err
    assert home.calls(prof.log) == 1
    assert home.status_for(user) == []


def test_endpoint_and_region_problems_are_translated(home, user, bed):
    from fake_endpoints import FakeEndpoint, closed_port, sts_error_xml

    prof = home.add_source_profile("work", user)
    role = make_role(bed, user)
    add_role_profile(home, "prod", role, region="eu-south-2")
    home.credential_process("work")  # the MFA session is cached
    cp = home.run("credential-process", "prod", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"})
    err = assert_one_error_with_hint(cp, "cannot reach AWS")
    assert "STS region used: eu-south-2" in err, err

    def plan(n, action):
        if action == "AssumeRole":
            return 403, sts_error_xml("RegionDisabledException", "STS is not activated in this region for account:444455556666.")
        return "forward"

    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        cp = home.run("credential-process", "prod", env={"AWS_ENDPOINT_URL": fake.endpoint})
    err = assert_one_error_with_hint(cp, "not activated in this region")
    assert "choose a region where STS is active" in err, err
    assert home.calls(prof.log) == 1
