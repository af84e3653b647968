"""Tests of the test bed's AssumeRole: trust policies, MFA context, durations, role
sessions in two accounts, and the role's own policies, as AWS treats them.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed_roles.py
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from bed_clients import long_term
from bed_clients import with_session as with_creds
from mfa_bed import Bed, BedError, Role, User, policies, totp
from mfa_bed.evaluator import Decision, evaluate_trust, principal_matches

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "444455556666"
MSG_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MSG_BAD_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
MSG_CHAINING = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
    "role chaining."
)
MSG_MAX_DURATION = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."

# A role's permission policy that lets its sessions assume further roles.
CHAIN = policies.allow_actions("sts:AssumeRole")

# ---------------------------------------------------------------------- fixtures


_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}{next(_names)}-{os.getpid()}"


@pytest.fixture
def make_user(bed):
    """A fresh user per call, so no test waits for the next TOTP step."""

    def make(policy=None, mfa=True) -> User:
        policy = policies.deny_all_except_listed_if_no_mfa() if policy is None else policy
        return bed.create_user(_name("user"), policy, mfa=mfa)

    return make


@pytest.fixture
def make_role(bed):
    def make(trust, permission_policy=None, account=ACCOUNT, max_session_duration=3600) -> Role:
        return bed.create_role(
            _name("Role"), trust, permission_policy, account=account,
            max_session_duration=max_session_duration,
        )

    return make


def mfa_session(bed: Bed, user: User) -> dict:
    sts = long_term(bed, user, "sts")
    return sts.get_session_token(SerialNumber=user.serial, TokenCode=totp(user.seed))["Credentials"]


def plain_session(bed: Bed, user: User) -> dict:
    return long_term(bed, user, "sts").get_session_token()["Credentials"]


def assume(sts, role: Role, session_name: str = "test", **kwargs) -> dict:
    return sts.assume_role(RoleArn=role.arn, RoleSessionName=session_name, **kwargs)


def error_of(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def denied(caller_arn: str, role_arn: str) -> tuple[str, str, int]:
    """AWS's answer when the trust policy does not let the caller in."""
    return (
        "AccessDenied",
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        403,
    )


def validation(message: str) -> tuple[str, str, int]:
    return ("ValidationError", message, 400)


# ---------------------------------------------------------------- trust: principal


def test_trust_by_user_arn(bed, make_user, make_role):
    alice, bob = make_user(), make_user()
    role = make_role(policies.trust_user(alice.arn))
    out = assume(with_creds(bed, mfa_session(bed, alice), "sts"), role)
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/test"
    # Another user of the same account, with MFA and Allow *: not named, not let in.
    assert error_of(assume, with_creds(bed, mfa_session(bed, bob), "sts"), role) == denied(
        bob.arn, role.arn
    )


@pytest.mark.parametrize(
    "principal", [f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "*"], ids=["root", "bare-id", "star"]
)
def test_trust_by_account(bed, make_user, make_role, principal):
    role = make_role(policies.trust(principal))
    for user in (make_user(), make_user()):
        assume(with_creds(bed, mfa_session(bed, user), "sts"), role)


def test_trust_of_another_account_denies(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_account("111122223333"))
    assert error_of(assume, with_creds(bed, mfa_session(bed, user), "sts"), role) == denied(
        user.arn, role.arn
    )


def test_missing_role_denied_like_an_untrusted_one(bed, make_user):
    user = make_user()
    sts = with_creds(bed, mfa_session(bed, user), "sts")
    missing = (f"arn:aws:iam::{ACCOUNT}:role/NoSuchRole", f"arn:aws:iam::{OTHER_ACCOUNT}:role/Admin")
    for arn in missing:
        code = error_of(sts.assume_role, RoleArn=arn, RoleSessionName="s1")
        assert code == denied(user.arn, arn)


# -------------------------------------------------------------------- trust: MFA


def test_mfa_trust_denies_long_term_keys_and_non_mfa_sessions(bed, make_user, make_role):
    # Allow * with no MFA rule: only the trust policy can say no.
    user = make_user(policies.allow_all())
    role = make_role(policies.trust_user(user.arn))
    assert error_of(assume, long_term(bed, user, "sts"), role) == denied(user.arn, role.arn)
    assert error_of(assume, with_creds(bed, plain_session(bed, user), "sts"), role) == denied(
        user.arn, role.arn
    )


def test_mfa_trust_allows_an_mfa_session_and_carries_its_mfa_time(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn))
    creds = mfa_session(bed, user)
    bed.age_session(creds["AccessKeyId"], 100)
    signed_in = bed.session_info(creds["AccessKeyId"])["mfa_auth_time"]
    out = assume(with_creds(bed, creds, "sts"), role, "mfa-session")
    info = bed.session_info(out["Credentials"]["AccessKeyId"])
    assert info["mfa"] is True
    # Not the time of AssumeRole: aws:MultiFactorAuthAge keeps counting from sign-in.
    assert info["mfa_auth_time"] == signed_in
    assert info["mfa_auth_time"] < info["issued"] - 90
    assert info["user"] == user.name and info["assumed_by"] == user.arn
    assert (info["role"], info["role_arn"], info["account"]) == (role.name, role.arn, ACCOUNT)
    assert info["session_name"] == "mfa-session"
    assert info["arn"] == out["AssumedRoleUser"]["Arn"]


def test_long_term_keys_with_token_code(bed, make_user, make_role):
    # AWS's DenyAllExceptListedIfNoMFA: the code in the call makes MFA present.
    user = make_user()
    role = make_role(policies.trust_user(user.arn))
    sts = long_term(bed, user, "sts")
    code = totp(user.seed)
    before = time.time()
    out = assume(sts, role, SerialNumber=user.serial, TokenCode=code)
    info = bed.session_info(out["Credentials"]["AccessKeyId"])
    assert info["mfa"] is True and before - 1 <= info["mfa_auth_time"] <= time.time()
    # The code is spent: reused, it is refused.
    assert error_of(assume, sts, role, SerialNumber=user.serial, TokenCode=code) == (
        "AccessDenied", MSG_BAD_CODE, 403,
    )
    wrong = f"{(int(totp(user.seed, offset=1)) + 1) % 1_000_000:06d}"
    assert error_of(assume, sts, role, SerialNumber=user.serial, TokenCode=wrong)[:2] == (
        "AccessDenied", MSG_BAD_CODE,
    )
    other = make_user()
    assert error_of(
        assume, sts, role, SerialNumber=other.serial, TokenCode=totp(other.seed)
    ) == ("AccessDenied", MSG_BAD_SERIAL, 403)


def test_identity_policy_must_allow_assume_role(bed, make_user, make_role):
    user = make_user()  # DenyAllExceptListedIfNoMFA + Allow *
    role = make_role(policies.trust_user(user.arn, mfa=False))
    code, message, status = error_of(assume, long_term(bed, user, "sts"), role)
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        f"User: {user.arn} is not authorized to perform: sts:AssumeRole on resource: "
        f"{role.arn} with an explicit deny in an identity-based policy"
    )
    assert error_of(assume, with_creds(bed, plain_session(bed, user), "sts"), role)[0] == (
        "AccessDenied"
    )
    assume(with_creds(bed, mfa_session(bed, user), "sts"), role)
    # No Allow for sts:AssumeRole at all: denied though the trust policy names the user.
    only_self = make_user(policies.self_service_only())
    role2 = make_role(policies.trust_user(only_self.arn))
    message = error_of(assume, with_creds(bed, mfa_session(bed, only_self), "sts"), role2)[1]
    assert message.endswith("because no identity-based policy allows the sts:AssumeRole action")


# -------------------------------------------------------------------- external id


def test_external_id(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_account(ACCOUNT, external_id="ext-42"))
    sts = with_creds(bed, mfa_session(bed, user), "sts")
    assume(sts, role, ExternalId="ext-42")
    assert error_of(assume, sts, role, ExternalId="ext-43") == denied(user.arn, role.arn)
    assert error_of(assume, sts, role) == denied(user.arn, role.arn)
    # A trust policy that asks for none ignores an ExternalId, as AWS does.
    assume(sts, make_role(policies.trust_account(ACCOUNT)), ExternalId="ext-42")


# -------------------------------------------------------------------- durations


def test_role_chaining_is_capped_at_one_hour(bed, make_user, make_role):
    user = make_user()
    first = make_role(policies.trust_user(user.arn), CHAIN, max_session_duration=43200)
    second = make_role(policies.trust_role(first.arn), max_session_duration=43200)
    session_sts = with_creds(bed, mfa_session(bed, user), "sts")
    # GetSessionToken credentials count as session credentials too.
    assert error_of(assume, session_sts, first, DurationSeconds=3601) == validation(MSG_CHAINING)
    role_creds = assume(session_sts, first, DurationSeconds=3600)["Credentials"]
    role_sts = with_creds(bed, role_creds, "sts")
    assert error_of(assume, role_sts, second, DurationSeconds=7200) == validation(MSG_CHAINING)
    assume(role_sts, second, DurationSeconds=3600)


def test_long_term_keys_get_up_to_max_session_duration(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn), max_session_duration=7200)
    sts = long_term(bed, user, "sts")
    code = totp(user.seed)
    out = assume(sts, role, SerialNumber=user.serial, TokenCode=code, DurationSeconds=7200)
    info = bed.session_info(out["Credentials"]["AccessKeyId"])
    assert info["expiration"] - info["issued"] in (7199, 7200)
    assert out["Credentials"]["Expiration"].timestamp() == info["expiration"]


def test_max_session_duration(bed, make_user, make_role):
    # No MFA in the way: long-term keys, no MFA rule anywhere.
    user = make_user(policies.allow_all())
    short = make_role(policies.trust_user(user.arn, mfa=False))
    longer = make_role(policies.trust_user(user.arn, mfa=False), max_session_duration=7200)
    sts = long_term(bed, user, "sts")
    assert error_of(assume, sts, short, DurationSeconds=3601) == validation(MSG_MAX_DURATION)
    assert error_of(assume, sts, longer, DurationSeconds=7201) == validation(MSG_MAX_DURATION)
    for role, duration in ((short, None), (longer, 7200), (longer, 900)):
        kwargs = {} if duration is None else {"DurationSeconds": duration}
        info = bed.session_info(assume(sts, role, **kwargs)["Credentials"]["AccessKeyId"])
        assert info["expiration"] - info["issued"] in ((duration or 3600) - 1, duration or 3600)
    assert error_of(assume, sts, longer, DurationSeconds=899) == validation(
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 900"
    )
    assert error_of(assume, sts, longer, DurationSeconds=43201) == validation(
        "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy "
        "constraint: Member must have value less than or equal to 43200"
    )


def test_parameter_validation(bed, make_user, make_role):
    user = make_user(policies.allow_all())
    role = make_role(policies.trust_user(user.arn, mfa=False))
    sts = long_term(bed, user, "sts")
    code, message, status = error_of(sts.assume_role, RoleArn=role.arn)
    assert (code, status) == ("ValidationError", 400)
    assert "Value null at 'roleSessionName'" in message
    assert error_of(sts.assume_role)[1].startswith("2 validation errors detected: ")
    assert "'roleSessionName'" in error_of(assume, sts, role, "has space")[1]
    assert "'externalId'" in error_of(assume, sts, role, ExternalId="x")[1]
    message = error_of(assume, sts, role, SerialNumber=user.serial, TokenCode="12")[1]
    assert "'tokenCode'" in message


# ------------------------------------------------------------- role credentials


def test_role_credentials_and_caller_identity(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn))
    sts = with_creds(bed, mfa_session(bed, user), "sts")
    a, b = assume(sts, role, "one"), assume(sts, role, "one")
    for out in (a, b):
        creds = out["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
        ident = with_creds(bed, creds, "sts").get_caller_identity()
        assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/one"
        assert ident["Arn"] == out["AssumedRoleUser"]["Arn"]
        assert ident["Account"] == ACCOUNT
        assert ident["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
        assert ident["UserId"].startswith("AROA") and ident["UserId"].endswith(":one")
        info = bed.session_info(creds["AccessKeyId"])
        assert info["expiration"] - info["issued"] in (3599, 3600)  # the default
    for field in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
        assert a["Credentials"][field] != b["Credentials"][field]


def test_expired_role_session_rejected(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn))
    creds = assume(with_creds(bed, mfa_session(bed, user), "sts"), role)["Credentials"]
    sts = with_creds(bed, creds, "sts")
    sts.get_caller_identity()
    bed.expire_session(creds["AccessKeyId"])
    assert error_of(sts.get_caller_identity) == (
        "ExpiredToken", "The security token included in the request is expired", 403,
    )
    forged = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    assert error_of(with_creds(bed, forged, "sts").get_caller_identity)[0] == "InvalidClientTokenId"


def test_role_session_cannot_call_get_session_token(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn), policies.allow_all())
    creds = assume(with_creds(bed, mfa_session(bed, user), "sts"), role)["Credentials"]
    code, message, status = error_of(with_creds(bed, creds, "sts").get_session_token)
    assert (code, status) == ("AccessDenied", 403) and "session credentials" in message


def test_chain_of_depth_two_keeps_mfa(bed, make_user, make_role):
    user = make_user()
    first = make_role(policies.trust_user(user.arn), CHAIN)
    second = make_role(policies.trust_role(first.arn, max_mfa_age=3600), CHAIN)
    third = make_role(policies.trust_account(ACCOUNT))
    creds = mfa_session(bed, user)
    signed_in = bed.session_info(creds["AccessKeyId"])["mfa_auth_time"]
    one = assume(with_creds(bed, creds, "sts"), first, "one")
    two = assume(with_creds(bed, one["Credentials"], "sts"), second, "two")
    three = assume(with_creds(bed, two["Credentials"], "sts"), third, "three")
    ident = with_creds(bed, three["Credentials"], "sts").get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{third.name}/three"
    info = bed.session_info(three["Credentials"]["AccessKeyId"])
    assert info["mfa"] is True and info["mfa_auth_time"] == signed_in
    assert info["user"] == user.name
    assert info["assumed_by"] == two["AssumedRoleUser"]["Arn"]
    # The second role trusts the first role's sessions only, not the user.
    assert error_of(assume, with_creds(bed, creds, "sts"), second) == denied(user.arn, second.arn)


def test_role_session_needs_its_roles_allow_to_chain(bed, make_user, make_role):
    user = make_user()
    first = make_role(policies.trust_user(user.arn))  # no permission policy
    second = make_role(policies.trust_role(first.arn))
    one = assume(with_creds(bed, mfa_session(bed, user), "sts"), first)
    code, message, status = error_of(assume, with_creds(bed, one["Credentials"], "sts"), second)
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        f"User: {one['AssumedRoleUser']['Arn']} is not authorized to perform: sts:AssumeRole "
        f"on resource: {second.arn} because no identity-based policy allows the "
        "sts:AssumeRole action"
    )


def test_chain_without_mfa_stays_without(bed, make_user, make_role):
    user = make_user(policies.allow_all())
    first = make_role(policies.trust_user(user.arn, mfa=False), CHAIN)
    second = make_role(policies.trust_role(first.arn))
    one = assume(long_term(bed, user, "sts"), first)
    assert bed.session_info(one["Credentials"]["AccessKeyId"])["mfa"] is False
    session_arn = one["AssumedRoleUser"]["Arn"]
    assert error_of(assume, with_creds(bed, one["Credentials"], "sts"), second) == denied(
        session_arn, second.arn
    )


def test_role_in_a_second_account(bed, make_user, make_role):
    user = make_user()
    role = make_role(
        policies.trust_account(ACCOUNT), policies.allow_actions("iam:ListRoles"),
        account=OTHER_ACCOUNT,
    )
    assert role.arn == f"arn:aws:iam::{OTHER_ACCOUNT}:role/{role.name}"
    home_role = make_role(policies.trust_account(ACCOUNT))
    out = assume(with_creds(bed, mfa_session(bed, user), "sts"), role, "cross")
    ident = with_creds(bed, out["Credentials"], "sts").get_caller_identity()
    assert ident["Account"] == OTHER_ACCOUNT
    assert ident["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/{role.name}/cross"
    assert bed.session_info(out["Credentials"]["AccessKeyId"])["account"] == OTHER_ACCOUNT
    # IAM calls with the role's keys see the second account's IAM.
    arns = [r["Arn"] for r in with_creds(bed, out["Credentials"], "iam").list_roles()["Roles"]]
    assert role.arn in arns and home_role.arn not in arns
    # A role there trusting only its own account does not let the user in.
    private = make_role(policies.trust_account(OTHER_ACCOUNT), account=OTHER_ACCOUNT)
    assert error_of(assume, with_creds(bed, mfa_session(bed, make_user()), "sts"), private)[0] == (
        "AccessDenied"
    )


def test_mfa_age_limit(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn, max_mfa_age=3600))
    creds = mfa_session(bed, user)
    sts = with_creds(bed, creds, "sts")
    assume(sts, role)
    bed.age_session(creds["AccessKeyId"], 3700)
    assert error_of(assume, sts, role) == denied(user.arn, role.arn)


def test_mfa_age_of_a_role_session(bed, make_user, make_role):
    user = make_user()
    first = make_role(policies.trust_user(user.arn), CHAIN)
    second = make_role(policies.trust_role(first.arn, max_mfa_age=3600))
    one = assume(with_creds(bed, mfa_session(bed, user), "sts"), first)
    key = one["Credentials"]["AccessKeyId"]
    before = bed.session_info(key)["mfa_auth_time"]
    info = bed.age_session(key, 3700)
    assert info["mfa_auth_time"] == pytest.approx(before - 3700) and info["role"] == first.name
    assert error_of(assume, with_creds(bed, one["Credentials"], "sts"), second) == denied(
        one["AssumedRoleUser"]["Arn"], second.arn
    )


# --------------------------------------------------------- the role's own policies


def test_role_permission_policy_with_mfa_conditions(bed, make_user, make_role):
    user = make_user(policies.allow_all())
    role = make_role(
        policies.trust_user(user.arn, mfa=False),
        policies.allow_actions(["iam:ListRoles", "s3:ListAllMyBuckets"], require_mfa=True),
    )
    # Assumed without MFA: the role's Deny applies.
    plain = assume(long_term(bed, user, "sts"), role, "plain")["Credentials"]
    code, message, status = error_of(with_creds(bed, plain, "iam").list_roles)
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/plain is not authorized to "
        "perform: iam:ListRoles with an explicit deny in an identity-based policy"
    )
    assert error_of(with_creds(bed, plain, "s3").list_buckets)[0] == "AccessDenied"
    # Assumed from an MFA session: allowed, but only what the role's policy lists.
    user_creds = mfa_session(bed, user)
    mfa = assume(with_creds(bed, user_creds, "sts"), role, "mfa")["Credentials"]
    assert role.arn in [r["Arn"] for r in with_creds(bed, mfa, "iam").list_roles()["Roles"]]
    with_creds(bed, mfa, "s3").list_buckets()
    message = error_of(with_creds(bed, mfa, "iam").list_users)[1]
    assert message.endswith("because no identity-based policy allows the iam:ListUsers action")
    # The user's own Allow * does not leak into the role session.
    with_creds(bed, user_creds, "iam").list_users()


def test_role_permission_policy_with_mfa_age(bed, make_user, make_role):
    user = make_user()
    recent_mfa = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iam:ListRoles",
                "Resource": "*",
                "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
            }
        ],
    }
    role = make_role(policies.trust_user(user.arn), recent_mfa)
    creds = assume(with_creds(bed, mfa_session(bed, user), "sts"), role)["Credentials"]
    iam = with_creds(bed, creds, "iam")
    iam.list_roles()
    bed.age_session(creds["AccessKeyId"], 3700)
    assert error_of(iam.list_roles)[0] == "AccessDenied"
    # GetCallerIdentity is never denied.
    with_creds(bed, creds, "sts").get_caller_identity()


# ------------------------------------------------------------------------ stats


def test_stats_count_assume_role(bed, make_user, make_role):
    user = make_user()
    role = make_role(policies.trust_user(user.arn), CHAIN)
    chained = make_role(policies.trust_role(role.arn))
    untrusting = make_role(policies.trust_account("111122223333"))
    sts = with_creds(bed, mfa_session(bed, user), "sts")
    one = assume(sts, role, "one")
    assume(sts, role, "two")
    for call in (lambda: assume(sts, untrusting), lambda: assume(sts, role, DurationSeconds=7200)):
        with pytest.raises(ClientError):
            call()
    assume(with_creds(bed, one["Credentials"], "sts"), chained)
    stats = bed.stats()
    assert stats["assume_role"][user.name] == 2
    assert stats["assume_role_failed"][user.name] == 2
    # A role session counts under its assumed-role ARN.
    assert stats["assume_role"][one["AssumedRoleUser"]["Arn"]] == 1
    assert stats["get_session_token"][user.name] == 1


# -------------------------------------------------------------------- admin API


def test_create_role_admin_errors_and_reset():
    # A bed of its own: reset wipes the shared one.
    with Bed.start() as own:
        own.create_role("Dup", policies.trust_account())
        with pytest.raises(BedError, match="409"):
            own.create_role("Dup", policies.trust_account())
        own.create_role("Dup", policies.trust_account(), account=OTHER_ACCOUNT)
        for kwargs in ({"account": "12345"}, {"max_session_duration": 3599},
                       {"max_session_duration": 43201}):
            with pytest.raises(BedError, match="400"):
                own.create_role("Bad", policies.trust_account(), **kwargs)
        with pytest.raises(BedError, match="400"):
            own.create_role("NoTrust", None)
        user = own.create_user("u", policies.allow_all(), mfa=False)
        role = own.create_role("Open", policies.trust_account(mfa=False))
        creds = assume(long_term(own, user, "sts"), role)["Credentials"]
        own.reset()
        assert own.session_info(creds["AccessKeyId"]) is None
        assert own.stats()["assume_role"] == {}
        # Roles of both accounts are gone: the names are free again.
        own.create_role("Dup", policies.trust_account())
        own.create_role("Dup", policies.trust_account(), account=OTHER_ACCOUNT)


# ------------------------------------------------------------------ the AWS CLI


def test_aws_cli_role_profile_from_an_mfa_session(bed, make_user, make_role, tmp_path):
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.skip("the aws CLI is not installed in this venv")
    user = make_user()
    role = make_role(policies.trust_account(ACCOUNT), account=OTHER_ACCOUNT)
    creds = mfa_session(bed, user)
    (tmp_path / "credentials").write_text(
        "[src]\n"
        f"aws_access_key_id = {creds['AccessKeyId']}\n"
        f"aws_secret_access_key = {creds['SecretAccessKey']}\n"
        f"aws_session_token = {creds['SessionToken']}\n"
    )
    (tmp_path / "config").write_text(
        f"[profile admin]\nrole_arn = {role.arn}\nsource_profile = src\nrole_session_name = cli\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        **bed.client_env(),
    }
    out = subprocess.run(
        [str(aws), "sts", "get-caller-identity", "--profile", "admin", "--query", "Arn",
         "--output", "text"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/{role.name}/cli"


# ------------------------------------------------------------- evaluator (unit)

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
ADMIN_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s"


@pytest.mark.parametrize(
    "entry, principals, account, expected",
    [
        ("*", [ALICE], ACCOUNT, True),
        (ACCOUNT, [ALICE], ACCOUNT, True),
        (f"arn:aws:iam::{ACCOUNT}:root", [ALICE], ACCOUNT, True),
        (f"arn:aws:iam::{OTHER_ACCOUNT}:root", [ALICE], ACCOUNT, False),
        (OTHER_ACCOUNT, [ALICE], ACCOUNT, False),
        (ALICE, [ALICE], ACCOUNT, True),
        (ALICE.replace("alice", "bob"), [ALICE], ACCOUNT, False),
        (f"arn:aws:iam::{ACCOUNT}:user/*", [ALICE], ACCOUNT, False),  # no wildcards
        (ADMIN, [ADMIN, ADMIN_SESSION], ACCOUNT, True),
        (ADMIN_SESSION, [ADMIN, ADMIN_SESSION], ACCOUNT, True),
        (ADMIN, [ALICE], ACCOUNT, False),
    ],
)
def test_principal_matches(entry, principals, account, expected):
    assert principal_matches(entry, principals, account) is expected


MFA = {"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "30"}


def test_evaluate_trust():
    doc = policies.trust_user(ALICE, external_id="x", max_mfa_age=60)
    ok = dict(MFA, **{"sts:ExternalId": "x"})
    assert evaluate_trust(doc, "sts:AssumeRole", [ALICE], ACCOUNT, ok) is Decision.ALLOW
    assert evaluate_trust(doc, "sts:AssumeRole", [ALICE], ACCOUNT, MFA) is Decision.IMPLICIT_DENY
    old = dict(ok, **{"aws:MultiFactorAuthAge": "60"})
    assert evaluate_trust(doc, "sts:AssumeRole", [ALICE], ACCOUNT, old) is Decision.IMPLICIT_DENY
    no_mfa = {"sts:ExternalId": "x"}
    assert evaluate_trust(doc, "sts:AssumeRole", [ALICE], ACCOUNT, no_mfa) is Decision.IMPLICIT_DENY
    assert evaluate_trust(doc, "sts:TagSession", [ALICE], ACCOUNT, ok) is Decision.IMPLICIT_DENY
    service = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                              "Action": "sts:AssumeRole"}]}
    assert evaluate_trust(service, "sts:AssumeRole", [ALICE], ACCOUNT, {}) is Decision.IMPLICIT_DENY
    anyone = {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:*"}}
    deny_alice = {"Effect": "Deny", "Principal": {"AWS": [ALICE]}, "Action": "sts:AssumeRole"}
    both = {"Statement": [anyone["Statement"], deny_alice]}
    assert evaluate_trust(anyone, "sts:AssumeRole", [ALICE], ACCOUNT, {}) is Decision.ALLOW
    assert evaluate_trust(both, "sts:AssumeRole", [ALICE], ACCOUNT, {}) is Decision.EXPLICIT_DENY
    not_alice = {"Statement": [anyone["Statement"], dict(deny_alice, Principal=None,
                                                         NotPrincipal={"AWS": ALICE})]}
    del not_alice["Statement"][1]["Principal"]
    assert evaluate_trust(not_alice, "sts:AssumeRole", [ALICE], ACCOUNT, {}) is Decision.ALLOW
    assert evaluate_trust(not_alice, "sts:AssumeRole", [ADMIN], ACCOUNT, {}) is (
        Decision.EXPLICIT_DENY
    )
