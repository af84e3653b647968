"""Tests of the MFA test bed itself: the server must enforce MFA the way AWS does,
or every end-to-end test built on it proves nothing.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed.py
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from bed_clients import client, long_term, with_session
from mfa_bed import Bed, BedError, User, free_port, policies, totp
from mfa_bed.evaluator import (
    Decision,
    UnsupportedCondition,
    condition_matches,
    conditions_match,
    evaluate,
    substitute,
)
from mfa_bed.otp import code_for_step, step_at

MSG_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MSG_BAD_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)

# ---------------------------------------------------------------------- fixtures


_names = itertools.count()


@pytest.fixture
def make_user(bed):
    """A fresh user per call, so no test waits for the next TOTP step."""

    def make(policy=None, mfa=True) -> User:
        policy = policies.deny_all_except_listed_if_no_mfa() if policy is None else policy
        return bed.create_user(f"user{next(_names)}-{os.getpid()}", policy, mfa=mfa)

    return make


def mfa_session(bed: Bed, user: User, **kwargs) -> dict:
    sts = long_term(bed, user, "sts")
    return sts.get_session_token(SerialNumber=user.serial, TokenCode=totp(user.seed), **kwargs)[
        "Credentials"
    ]


def plain_session(bed: Bed, user: User, **kwargs) -> dict:
    return long_term(bed, user, "sts").get_session_token(**kwargs)["Credentials"]


def error_of(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# ------------------------------------------------------------------------- TOTP


def test_totp_matches_rfc6238_vectors():
    # RFC 6238 appendix B, SHA-1 seed "12345678901234567890", last 6 of 8 digits.
    seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp(seed, at=59) == "287082"
    assert totp(seed, at=1111111109) == "081804"
    assert totp(seed, at=1234567890) == "005924"
    assert totp(seed, at=59, offset=1) == totp(seed, at=89)
    assert totp(seed.lower(), at=59) == "287082"


# ------------------------------------------------------- policy: deny without MFA


def test_long_term_keys_denied_on_protected_call(bed, make_user):
    user = make_user()
    code, message, status = error_of(long_term(bed, user, "iam").list_users)
    assert (code, status) == ("AccessDenied", 403)
    assert user.arn in message and "iam:ListUsers" in message and "explicit deny" in message


def test_mfa_session_allowed_on_protected_call(bed, make_user):
    user = make_user()
    creds = mfa_session(bed, user)
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    names = [u["UserName"] for u in with_session(bed, creds, "iam").list_users()["Users"]]
    assert user.name in names
    info = bed.session_info(creds["AccessKeyId"])
    assert info["user"] == user.name and info["mfa"] is True


def test_non_mfa_session_denied(bed, make_user):
    user = make_user()
    creds = plain_session(bed, user)
    assert bed.session_info(creds["AccessKeyId"])["mfa"] is False
    code, _, status = error_of(with_session(bed, creds, "iam").list_users)
    assert (code, status) == ("AccessDenied", 403)


def test_self_service_calls_allowed_without_mfa(bed, make_user):
    user = make_user()
    iam = long_term(bed, user, "iam")
    assert iam.get_user()["User"]["UserName"] == user.name
    serials = [d["SerialNumber"] for d in iam.list_mfa_devices()["MFADevices"]]
    assert serials == [user.serial]


def test_sessions_get_unique_credentials(bed, make_user):
    user = make_user()
    a, b = plain_session(bed, user), plain_session(bed, user)
    assert a["AccessKeyId"] != b["AccessKeyId"]
    assert a["SecretAccessKey"] != b["SecretAccessKey"]
    assert a["SessionToken"] != b["SessionToken"]


# ----------------------------------------------------------- GetSessionToken codes


def test_wrong_code_denied(bed, make_user):
    user = make_user()
    good = totp(user.seed)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    sts = long_term(bed, user, "sts")
    code, message, status = error_of(
        sts.get_session_token, SerialNumber=user.serial, TokenCode=wrong
    )
    assert (code, message, status) == ("AccessDenied", MSG_BAD_CODE, 403)


def test_reused_code_denied(bed, make_user):
    user = make_user()
    sts = long_term(bed, user, "sts")
    code = totp(user.seed)
    sts.get_session_token(SerialNumber=user.serial, TokenCode=code)
    assert error_of(sts.get_session_token, SerialNumber=user.serial, TokenCode=code)[:2] == (
        "AccessDenied",
        MSG_BAD_CODE,
    )


def test_codes_spent_by_enrollment_are_rejected(bed, make_user):
    before = time.time()
    user = make_user()
    sts = long_term(bed, user, "sts")
    # The device was enabled with the codes of the two steps before creation.
    previous = totp(user.seed, at=before, offset=-1)
    assert error_of(sts.get_session_token, SerialNumber=user.serial, TokenCode=previous)[1] == (
        MSG_BAD_CODE
    )


def test_next_step_code_accepted_for_clock_skew(bed, make_user):
    user = make_user()
    sts = long_term(bed, user, "sts")
    sts.get_session_token(SerialNumber=user.serial, TokenCode=totp(user.seed, offset=1))


def test_wrong_serial_denied(bed, make_user):
    user, other = make_user(), make_user()
    sts = long_term(bed, user, "sts")
    for serial in (other.serial, "arn:aws:iam::123456789012:mfa/nobody"):
        assert error_of(
            sts.get_session_token, SerialNumber=serial, TokenCode=totp(user.seed)
        ) == ("AccessDenied", MSG_BAD_SERIAL, 403)


def test_session_cannot_call_get_session_token(bed, make_user):
    user = make_user()
    creds = mfa_session(bed, user)
    code, message, status = error_of(with_session(bed, creds, "sts").get_session_token)
    assert (code, status) == ("AccessDenied", 403)
    assert "session credentials" in message


@pytest.mark.parametrize("duration", [899, 129601, 0])
def test_duration_out_of_bounds(bed, make_user, duration):
    user = make_user(mfa=False)
    sts = long_term(bed, user, "sts")
    code, message, status = error_of(sts.get_session_token, DurationSeconds=duration)
    assert (code, status) == ("ValidationError", 400)
    assert "durationSeconds" in message


@pytest.mark.parametrize("duration", [900, 129600])
def test_duration_bounds_accepted(bed, make_user, duration):
    user = make_user(mfa=False)
    creds = plain_session(bed, user, DurationSeconds=duration)
    info = bed.session_info(creds["AccessKeyId"])
    assert info["expiration"] - info["issued"] in (duration - 1, duration)
    assert creds["Expiration"].timestamp() == info["expiration"]


def test_token_code_must_be_six_digits(bed, make_user):
    user = make_user()
    sts = long_term(bed, user, "sts")
    for bad in ("12345", "abcdef"):
        code, _, status = error_of(sts.get_session_token, SerialNumber=user.serial, TokenCode=bad)
        assert (code, status) == ("ValidationError", 400)


def test_concurrent_callers_cannot_share_a_code(bed, make_user):
    user = make_user()
    code = totp(user.seed)

    def attempt(_):
        # One client per thread: boto3 clients are not meant to be shared.
        try:
            long_term(bed, user, "sts").get_session_token(SerialNumber=user.serial, TokenCode=code)
            return "ok"
        except ClientError as exc:
            return exc.response["Error"]["Message"]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert results.count("ok") == 1
    assert results.count(MSG_BAD_CODE) == 5


def test_stats_count_successes_and_failures(bed, make_user):
    user = make_user()
    sts = long_term(bed, user, "sts")
    code = totp(user.seed)
    sts.get_session_token(SerialNumber=user.serial, TokenCode=code)
    sts.get_session_token()
    for _ in range(3):
        with pytest.raises(ClientError):
            sts.get_session_token(SerialNumber=user.serial, TokenCode=code)
    stats = bed.stats()
    assert stats["get_session_token"][user.name] == 2
    assert stats["get_session_token_failed"][user.name] == 3


def test_stats_count_iam_calls_by_action_denied_ones_too(bed, make_user):
    user = make_user()  # the MFA policy: IAM reads need MFA
    iam = long_term(bed, user, "iam")
    before = bed.stats()["iam_calls"]
    iam.list_mfa_devices()
    iam.list_mfa_devices()
    assert error_of(iam.list_users)[0] == "AccessDenied"
    after = bed.stats()["iam_calls"]
    assert after.get("ListMFADevices", 0) - before.get("ListMFADevices", 0) == 2
    assert after.get("ListUsers", 0) - before.get("ListUsers", 0) == 1


# ------------------------------------------------------ identity, expiry, bad keys


def test_get_caller_identity_always_allowed(bed, make_user):
    deny_everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    user = make_user(deny_everything)
    assert long_term(bed, user, "sts").get_caller_identity()["Arn"] == user.arn
    # Nothing else passes that policy.
    assert error_of(long_term(bed, user, "iam").get_user)[0] == "AccessDenied"
    # Nor GetSessionToken can be denied by a policy (as on AWS).
    creds = mfa_session(bed, user)
    assert with_session(bed, creds, "sts").get_caller_identity()["Arn"] == user.arn


def test_expired_session_rejected(bed, make_user):
    user = make_user()
    creds = mfa_session(bed, user)
    iam, sts = with_session(bed, creds, "iam"), with_session(bed, creds, "sts")
    iam.list_users()
    bed.expire_session(creds["AccessKeyId"])
    expected = ("ExpiredToken", "The security token included in the request is expired", 403)
    assert error_of(iam.list_users) == expected
    assert error_of(sts.get_caller_identity) == expected
    assert bed.session_info(creds["AccessKeyId"])["expiration"] <= time.time()


def test_unknown_key_and_wrong_token_rejected(bed, make_user):
    bogus = client(bed, "sts", "AKIAAAAAAAAAAAAAAAAA", "x" * 40)
    assert error_of(bogus.get_caller_identity)[0] == "InvalidClientTokenId"
    user = make_user()
    creds = mfa_session(bed, user)
    forged = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    assert error_of(with_session(bed, forged, "iam").list_users)[0] == "InvalidClientTokenId"


# ---------------------------------------------------------------- other policies


def test_bool_console_only(bed, make_user):
    user = make_user(policies.bool_console_only())
    # aws:MultiFactorAuthPresent is absent for long-term keys: plain Bool does not match.
    long_term(bed, user, "iam").list_users()
    assert error_of(with_session(bed, plain_session(bed, user), "iam").list_users)[0] == (
        "AccessDenied"
    )
    with_session(bed, mfa_session(bed, user), "iam").list_users()


def test_mfa_age(bed, make_user):
    user = make_user(policies.mfa_age(60))
    code, message, _ = error_of(long_term(bed, user, "iam").list_users)
    assert code == "AccessDenied" and "no identity-based policy allows" in message
    creds = mfa_session(bed, user)
    iam = with_session(bed, creds, "iam")
    iam.list_users()
    bed.age_session(creds["AccessKeyId"], 61)
    assert error_of(iam.list_users)[0] == "AccessDenied"


def test_with_password_change_lets_change_password_through(bed, make_user):
    user = make_user(policies.with_password_change())
    iam = long_term(bed, user, "iam")
    # Not denied by policy: moto then answers that there is no such policy.
    code, _, _ = error_of(iam.get_account_password_policy)
    assert code == "NoSuchEntity"
    assert error_of(iam.list_users)[0] == "AccessDenied"


# --------------------------------------------------------------- MFA enrollment


def test_self_service_enrollment(bed, make_user):
    user = make_user(policies.self_service_only(), mfa=False)
    iam = long_term(bed, user, "iam")

    # ${aws:username} in the policy: only a device named after the user.
    assert error_of(iam.create_virtual_mfa_device, VirtualMFADeviceName="someone-else")[0] == (
        "AccessDenied"
    )
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=user.name)["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], device["Base32StringSeed"].decode()
    assert serial.endswith(f":mfa/{user.name}")
    assert bed.mfa_devices(user.name) == [{"serial": serial, "enabled": False}]

    code, _, status = error_of(iam.create_virtual_mfa_device, VirtualMFADeviceName=user.name)
    assert (code, status) == ("EntityAlreadyExists", 409)

    now = step_at()
    not_consecutive = dict(
        AuthenticationCode1=code_for_step(seed, now - 2), AuthenticationCode2=code_for_step(seed, now)
    )
    code, message, _ = error_of(
        iam.enable_mfa_device, UserName=user.name, SerialNumber=serial, **not_consecutive
    )
    assert (code, message) == ("InvalidAuthenticationCode", "Authentication code for device is not valid.")
    assert bed.mfa_devices(user.name) == [{"serial": serial, "enabled": False}]

    now = step_at()  # one clock read: two would straddle a step now and then
    iam.enable_mfa_device(
        UserName=user.name,
        SerialNumber=serial,
        AuthenticationCode1=code_for_step(seed, now - 1),
        AuthenticationCode2=code_for_step(seed, now),
    )
    assert bed.mfa_devices(user.name) == [{"serial": serial, "enabled": True}]
    assert [d["SerialNumber"] for d in iam.list_mfa_devices()["MFADevices"]] == [serial]
    # Still no Allow * for this user, MFA or not.
    sts = long_term(bed, user, "sts")
    creds = sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, offset=1))["Credentials"]
    assert error_of(with_session(bed, creds, "iam").list_users)[0] == "AccessDenied"


def test_delete_virtual_mfa_device(bed, make_user):
    user = make_user(policies.allow_all(), mfa=False)
    iam = long_term(bed, user, "iam")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user.name)["VirtualMFADevice"][
        "SerialNumber"
    ]
    assert serial in bed.virtual_devices()
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert serial not in bed.virtual_devices()


def test_delete_virtual_mfa_device_denied_without_mfa_by_the_aws_example(bed, make_user):
    # DeleteVirtualMFADevice is not in the example's NotAction list.
    user = make_user(policies.self_service_only(), mfa=False)
    iam = long_term(bed, user, "iam")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user.name)["VirtualMFADevice"][
        "SerialNumber"
    ]
    assert error_of(iam.delete_virtual_mfa_device, SerialNumber=serial)[0] == "AccessDenied"


# ------------------------------------------------------------------ the AWS CLI


def test_aws_cli_against_the_bed(bed, make_user, tmp_path):
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.skip("the aws CLI is not installed in this venv")
    user = make_user()
    creds = mfa_session(bed, user)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        **bed.client_env(),
    }
    out = subprocess.run(
        [str(aws), "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == user.arn
    out = subprocess.run(
        [str(aws), "iam", "list-users"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    env.pop("AWS_SESSION_TOKEN")
    env.update(AWS_ACCESS_KEY_ID=user.access_key_id, AWS_SECRET_ACCESS_KEY=user.secret_access_key)
    out = subprocess.run(
        [str(aws), "iam", "list-users"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 255 and "AccessDenied" in out.stderr


# ------------------------------------------------------------------- admin/reset


def test_admin_errors_and_reset():
    # A bed of its own (on a given port): reset wipes every user of the shared one.
    port = free_port()
    with Bed.start(port=port) as own:
        assert own.endpoint == f"http://127.0.0.1:{port}"
        user = own.create_user("dup", policies.deny_all_except_listed_if_no_mfa())
        with pytest.raises(BedError, match="409"):
            own.create_user("dup", None)
        plain_session(own, user)
        assert own.stats()["get_session_token"] == {"dup": 1}
        own.reset()
        assert own.stats() == {
            "get_session_token": {},
            "get_session_token_failed": {},
            "assume_role": {},
            "assume_role_failed": {},
            "iam_calls": {},
        }
        assert own.virtual_devices() == []
        # Auth is still on: the old key is now unknown.
        assert error_of(long_term(own, user, "sts").get_caller_identity)[0] == "InvalidClientTokenId"
        assert own.session_info("ASIANOTHINGHERE00000") is None
        # moto's own reset clears the bed's state too.
        plain_session(own, own.create_user("again", None))
        request = urllib.request.Request(own.endpoint + "/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        assert own.stats()["get_session_token"] == {}
    assert own.process.poll() is not None


# ------------------------------------------------------------- evaluator (unit)

MFA = {"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "30", "aws:username": "alice"}
NO_MFA_SESSION = {"aws:MultiFactorAuthPresent": "false", "aws:username": "alice"}
LONG_TERM = {"aws:username": "alice"}


@pytest.mark.parametrize(
    "operator, key, value, context, expected",
    [
        ("Bool", "aws:MultiFactorAuthPresent", "false", NO_MFA_SESSION, True),
        ("Bool", "aws:MultiFactorAuthPresent", "false", MFA, False),
        ("Bool", "aws:MultiFactorAuthPresent", "false", LONG_TERM, False),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", "false", LONG_TERM, True),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", "false", MFA, False),
        ("Bool", "aws:multifactorauthpresent", True, MFA, True),  # keys case-insensitive, JSON bool
        ("NumericLessThan", "aws:MultiFactorAuthAge", "3600", MFA, True),
        ("NumericLessThan", "aws:MultiFactorAuthAge", "30", MFA, False),
        ("NumericLessThanEquals", "aws:MultiFactorAuthAge", "30", MFA, True),
        ("NumericGreaterThan", "aws:MultiFactorAuthAge", "29", MFA, True),
        ("NumericGreaterThanEquals", "aws:MultiFactorAuthAge", "31", MFA, False),
        ("NumericEquals", "aws:MultiFactorAuthAge", ["1", "30"], MFA, True),
        ("NumericNotEquals", "aws:MultiFactorAuthAge", ["1", "30"], MFA, False),
        ("NumericLessThan", "aws:MultiFactorAuthAge", "3600", LONG_TERM, False),
        ("NumericLessThanIfExists", "aws:MultiFactorAuthAge", "3600", LONG_TERM, True),
        ("NumericGreaterThanIfExists", "aws:MultiFactorAuthAge", "3600", MFA, False),
        ("NumericLessThan", "aws:username", "5", MFA, False),  # not a number: no match
        ("StringEquals", "aws:username", "alice", MFA, True),
        ("StringEquals", "aws:username", "Alice", MFA, False),
        ("StringEqualsIgnoreCase", "aws:username", "ALICE", MFA, True),
        ("StringNotEquals", "aws:username", ["bob", "carol"], MFA, True),
        ("StringNotEquals", "aws:username", ["bob", "alice"], MFA, False),
        ("StringLike", "aws:username", "al*", MFA, True),
        ("StringLike", "aws:username", "a?ice", MFA, True),
        ("StringLike", "aws:username", "b*", MFA, False),
        ("StringEquals", "aws:PrincipalTag/team", "x", MFA, False),
        ("StringEqualsIfExists", "aws:PrincipalTag/team", "x", MFA, True),
        ("StringEqualsIfExists", "aws:username", "bob", MFA, False),
        ("StringLikeIfExists", "aws:username", "al*", MFA, True),
        # Negated operators match an absent key (AWS documents this).
        ("StringNotEquals", "aws:PrincipalTag/team", "x", MFA, True),
        ("StringEquals", "aws:username", "${aws:username}", MFA, True),
        ("Null", "aws:MultiFactorAuthAge", "true", LONG_TERM, True),
        ("Null", "aws:MultiFactorAuthAge", "true", MFA, False),
        ("Null", "aws:MultiFactorAuthAge", "false", MFA, True),
    ],
)
def test_condition_operators(operator, key, value, context, expected):
    assert condition_matches(operator, key, value, context) is expected


def test_condition_block_is_a_conjunction():
    block = {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "NumericLessThan": {"aws:MultiFactorAuthAge": "60"},
    }
    assert conditions_match(block, MFA)
    assert not conditions_match(block, dict(MFA, **{"aws:MultiFactorAuthAge": "61"}))
    assert conditions_match(None, LONG_TERM)


def test_unsupported_operator_is_an_error():
    with pytest.raises(UnsupportedCondition):
        condition_matches("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", MFA)
    with pytest.raises(UnsupportedCondition):
        condition_matches("ForAnyValue:StringEquals", "aws:username", "alice", MFA)


def test_variable_substitution():
    assert substitute("arn:aws:iam::*:user/${aws:username}", MFA) == "arn:aws:iam::*:user/alice"
    assert substitute("${aws:PrincipalTag/x}", MFA) is None
    assert substitute("a${*}b${$}", MFA) == "a*b$"


def test_evaluate_explicit_deny_wins_and_notaction():
    doc = policies.deny_all_except_listed_if_no_mfa()
    alice = "arn:aws:iam::123456789012:user/alice"
    for ctx, expected in ((LONG_TERM, Decision.EXPLICIT_DENY), (NO_MFA_SESSION, Decision.EXPLICIT_DENY), (MFA, Decision.ALLOW)):
        assert evaluate([doc], "iam:ListUsers", "*", ctx) is expected
    # Listed actions escape the Deny without MFA, and are allowed on the user's own ARN.
    assert evaluate([doc], "iam:EnableMFADevice", alice, LONG_TERM) is Decision.ALLOW
    assert evaluate([doc], "IAM:enablemfadevice", alice, LONG_TERM) is Decision.ALLOW
    only_self = policies.self_service_only()
    assert evaluate([only_self], "iam:EnableMFADevice", alice.replace("alice", "bob"), LONG_TERM) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate([only_self], "iam:ListUsers", "*", MFA) is Decision.IMPLICIT_DENY
    allow = {"Statement": {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}}
    deny = {"Statement": [{"Effect": "Deny", "Action": "iam:List*", "Resource": "*"}]}
    assert evaluate([allow, deny], "iam:ListUsers", "*", MFA) is Decision.EXPLICIT_DENY
    assert evaluate([allow, deny], "iam:GetUser", "*", MFA) is Decision.ALLOW
    assert evaluate([allow], "sts:GetCallerIdentity", "*", MFA) is Decision.IMPLICIT_DENY
