"""`stsmfa credential-process`, the path the AWS CLI and SDKs take: a code once,
GetSessionToken with MFA, the session cached in the OS keyring and printed as
SPEC's JSON, then served from the cache without a code or an STS call; a
refresh; the real AWS CLI and boto3 through `credential_process`; and the two
binaries (`stsmfa` serves hits on its own and hands misses to `stsmfa-sts`)."""

from __future__ import annotations

import json
import shutil

from assertions import assert_error, assert_session
from harness import sts_ok


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


# ---------------------------------------------------------------------------
# the AWS CLI and boto3


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
# stsmfa and stsmfa-sts


def test_a_hit_needs_only_stsmfa_and_a_miss_names_the_missing_binary(home, user, bed, tmp_path):
    prof = home.add_source_profile("work", user)
    first = home.credential_process("work")  # through stsmfa-sts: a miss
    assert sts_ok(bed, user) == 1

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(home.bin, lone / "stsmfa")  # without stsmfa-sts beside it

    hit = home._run([str(lone / "stsmfa"), "credential-process", "work"])
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout) == first

    miss = home._run([str(lone / "stsmfa"), "credential-process", "work", "--refresh"])
    assert_error(miss, "stsmfa-sts", hint=True)
    assert miss.stderr.startswith("stsmfa: error: cannot run "), miss.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


def test_verbose_miss_says_it_hands_over(home, user):
    home.add_source_profile("work", user)
    cp = home.run("-v", "credential-process", "work")
    assert cp.returncode == 0, cp.stderr
    assert "handing over to" in cp.stderr and "stsmfa-sts" in cp.stderr, cp.stderr
    again = home.run("-v", "credential-process", "work")
    assert "cache hit" in again.stderr and "handing over" not in again.stderr, again.stderr


def test_a_handed_over_miss_reads_the_store_once_before_the_lock(home, user, store):
    """stsmfa has just read the cache and missed: stsmfa-sts goes straight to
    the lock and reads the store again only there (one look-up each)."""
    home.add_source_profile("work", user)
    cp = home.run("-v", "credential-process", "work")
    assert cp.returncode == 0, cp.stderr
    lines = cp.stderr.splitlines()
    looks = [i for i, ln in enumerate(lines) if "cache miss for profile work" in ln]
    handed = next(i for i, ln in enumerate(lines) if "handing over to" in ln)
    # stsmfa's, then the re-check under the profile lock; without --after-miss
    # stsmfa-sts read the store once more before the lock.
    assert len(looks) == 2, cp.stderr
    assert looks[0] < handed < looks[1], cp.stderr
