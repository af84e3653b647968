"""stsmfa against the MFA policies AWS users actually have: long-term keys are
denied, stsmfa's MFA session gets through by every route (credential_process,
`env`, `exec`), a wrong code gets nothing, and the device is found under the
policy when no mfa_serial is configured."""

from __future__ import annotations

import json

import pytest
from mfa_bed import policies

from assertions import assert_error
from harness import sts_failed, sts_ok

MFA_POLICIES = {
    "deny_all_except_listed_if_no_mfa": policies.deny_all_except_listed_if_no_mfa,
    "with_password_change": policies.with_password_change,
    "mfa_age_3600": lambda: policies.mfa_age(3600),
}


@pytest.fixture(params=list(MFA_POLICIES))
def policy_user(request, make_user):
    return make_user(MFA_POLICIES[request.param]())


def _denied(cp) -> None:
    assert cp.returncode != 0, f"allowed: {cp.stdout}"
    assert "AccessDenied" in cp.stderr, cp.stderr


def _listed(cp) -> None:
    assert cp.returncode == 0, cp.stderr
    assert "Users" in json.loads(cp.stdout)


def test_long_term_keys_are_denied(home, policy_user, aws_cli):
    home.add_source_profile("work", policy_user)
    _denied(home.aws("iam", "list-users", profile="work"))
    # identity still answers: the keys themselves are good
    who = home.aws("sts", "get-caller-identity", profile="work")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"] == policy_user.arn


def test_session_via_credential_process_is_allowed(home, policy_user, bed, aws_cli):
    prof = home.add_source_profile("work", policy_user)
    home.add_process_profile("work-mfa", "work")
    _listed(home.aws("iam", "list-users", profile="work-mfa"))
    cred = home.credential_process("work")
    info = bed.session_info(cred["AccessKeyId"])
    assert info is not None and info["user"] == policy_user.name
    assert info["mfa"] is True, info
    assert home.calls(prof.log) == 1 and sts_ok(bed, policy_user) == 1


def test_session_via_env_in_bash_is_allowed(home, policy_user, aws_cli):
    home.add_source_profile("work", policy_user)
    cp = home.sh('eval "$(stsmfa env work)" || exit 90; aws iam list-users --output json')
    _listed(cp)


def test_session_via_exec_is_allowed(home, policy_user, aws_cli):
    home.add_source_profile("work", policy_user)
    _listed(home.run("exec", "work", "--", "aws", "iam", "list-users", "--output", "json"))


def test_wrong_code_is_denied_and_nothing_cached(home, policy_user, bed, aws_cli):
    log = home.tools / "wrong.log"
    home.add_source_profile("work", policy_user, mfa_process=home.mfa_process(policy_user, log, mode="wrong"))
    home.add_process_profile("work-mfa", "work")
    cp = home.aws("iam", "list-users", profile="work-mfa")
    assert cp.returncode != 0
    assert "stsmfa: error:" in cp.stderr, cp.stderr
    assert sts_ok(bed, policy_user) == 0 and sts_failed(bed, policy_user) >= 1
    assert home.status_for(policy_user) == []
    # a fixed wrong code: no wait for the next step, no retry without a terminal
    assert_error(home.run("credential-process", "work", "--mfa-code", home.wrong_code(policy_user)), "code")
    assert home.status_for(policy_user) == []


def test_serial_discovery_works_under_the_policy(home, policy_user, bed, aws_cli):
    home.add_source_profile("work", policy_user, mfa_serial=False)
    home.add_process_profile("work-mfa", "work")
    _listed(home.aws("iam", "list-users", profile="work-mfa"))
    assert [e["mfa_serial"] for e in home.status_for(policy_user)] == [policy_user.serial]


def test_mfa_age_policy_denies_an_old_session(home, make_user, bed, aws_cli):
    u = make_user(policies.mfa_age(3600))
    home.add_source_profile("work", u)
    cred = home.credential_process("work")
    env = {"AWS_ACCESS_KEY_ID": cred["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": cred["SecretAccessKey"],
           "AWS_SESSION_TOKEN": cred["SessionToken"], "AWS_DEFAULT_REGION": "us-east-1"}
    _listed(home.aws("iam", "list-users", env=env))
    bed.age_session(cred["AccessKeyId"], 3700)
    _denied(home.aws("iam", "list-users", env=env))


def test_bool_console_only_lets_keys_and_session_through(home, make_user, bed, aws_cli):
    u = make_user(policies.bool_console_only())
    home.add_source_profile("work", u)
    home.add_process_profile("work-mfa", "work")
    _listed(home.aws("iam", "list-users", profile="work"))
    _listed(home.aws("iam", "list-users", profile="work-mfa"))
    cred = home.credential_process("work")
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True
    assert sts_ok(bed, u) == 1
