"""The bed's IAM as `stsmfa admin` needs it (mfa_bed/admin_iam.py): group-attached
policies enforced by the evaluator, ChangePassword with its old/new checks and the
password policy's AllowUsersToChangePassword, login profiles keeping
PasswordResetRequired, the credential report's mfa_active, many users at once.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed_admin.py
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from bed_clients import long_term
from mfa_bed import User, policies
from mfa_bed.otp import code_for_step, step_at

_names = itertools.count()


def error_of(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def name(prefix: str = "adm") -> str:
    return f"{prefix}{next(_names)}-{os.getpid()}"


@pytest.fixture(scope="module")
def admin(bed) -> User:
    return bed.create_user(name("admin"), policies.allow_all(), mfa=False)


@pytest.fixture
def iam(bed, admin):
    return long_term(bed, admin, "iam")


@pytest.fixture(autouse=True)
def no_password_policy(iam):
    yield
    try:
        iam.delete_account_password_policy()
    except ClientError:
        pass


def allow(actions: list[str]) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    )


def group_with_policy(iam, document: str) -> tuple[str, str]:
    group = name("g")
    iam.create_group(GroupName=group)
    arn = iam.create_policy(PolicyName=name("p"), PolicyDocument=document)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    return group, arn


def test_a_group_attached_policy_is_enforced_by_the_evaluator(bed, iam):
    user = bed.create_user(name(), None, mfa=False)
    s3 = long_term(bed, user, "s3")
    assert error_of(s3.list_buckets)[0] == "AccessDenied"
    group, arn = group_with_policy(iam, allow(["s3:ListAllMyBuckets"]))
    iam.add_user_to_group(GroupName=group, UserName=user.name)
    s3.list_buckets()  # allowed through the group
    # a group's DenyAllExceptListedIfNoMFA applies to long-term keys (BoolIfExists)
    deny_group, _ = group_with_policy(iam, json.dumps(policies.self_service_only()))
    iam.add_user_to_group(GroupName=deny_group, UserName=user.name)
    code, message = error_of(s3.list_buckets)
    assert code == "AccessDenied" and "explicit deny" in message, message
    iam.remove_user_from_group(GroupName=deny_group, UserName=user.name)
    s3.list_buckets()
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    assert error_of(s3.list_buckets)[0] == "AccessDenied"


def user_with_password(bed, iam, password: str, policy=None, reset: bool = True) -> User:
    user = bed.create_user(name(), policy, mfa=False)
    iam.create_login_profile(UserName=user.name, Password=password, PasswordResetRequired=reset)
    return user


def test_change_password_checks_the_old_and_the_new_password_and_clears_the_reset(bed, iam):
    iam.update_account_password_policy(
        MinimumPasswordLength=12, RequireNumbers=True, RequireSymbols=True, AllowUsersToChangePassword=True
    )
    user = user_with_password(bed, iam, "Temp-password-1!")
    assert iam.get_login_profile(UserName=user.name)["LoginProfile"]["PasswordResetRequired"] is True
    me = long_term(bed, user, "iam")
    code, message = error_of(me.change_password, OldPassword="wrong-old-1!", NewPassword="A-good-new-pw-2!")
    assert code == "InvalidInput" and "old password" in message
    code, message = error_of(me.change_password, OldPassword="Temp-password-1!", NewPassword="short1!")
    assert code == "PasswordPolicyViolation" and "12 characters" in message
    code, _ = error_of(me.change_password, OldPassword="Temp-password-1!", NewPassword="no-digits-at-all!")
    assert code == "PasswordPolicyViolation"
    assert iam.get_login_profile(UserName=user.name)["LoginProfile"]["PasswordResetRequired"] is True
    me.change_password(OldPassword="Temp-password-1!", NewPassword="A-good-new-pw-2!")
    assert iam.get_login_profile(UserName=user.name)["LoginProfile"]["PasswordResetRequired"] is False
    # the new password is now the old one
    assert error_of(me.change_password, OldPassword="Temp-password-1!", NewPassword="Another-pw-3!")[0] == "InvalidInput"
    me.change_password(OldPassword="A-good-new-pw-2!", NewPassword="Another-pw-3!")


def test_allow_users_to_change_password_grants_it_unless_a_policy_denies_it(bed, iam):
    plain = user_with_password(bed, iam, "Temp-password-1!")
    sample = user_with_password(bed, iam, "Temp-password-1!", policies.self_service_only())
    variant = user_with_password(bed, iam, "Temp-password-1!", policies.with_password_change())
    # no password policy: nobody may without an Allow
    code, _ = error_of(long_term(bed, plain, "iam").change_password, OldPassword="Temp-password-1!", NewPassword="New-password-2!")
    assert code == "AccessDenied"
    iam.update_account_password_policy(AllowUsersToChangePassword=True)
    long_term(bed, plain, "iam").change_password(OldPassword="Temp-password-1!", NewPassword="New-password-2!")
    long_term(bed, plain, "iam").get_account_password_policy()
    # AWS's sample policy: ChangePassword is not in its NotAction, so its Deny wins
    code, message = error_of(
        long_term(bed, sample, "iam").change_password, OldPassword="Temp-password-1!", NewPassword="New-password-2!"
    )
    assert code == "AccessDenied" and "iam:ChangePassword" in message and "explicit deny" in message
    # the first-login variant lists it
    long_term(bed, variant, "iam").change_password(OldPassword="Temp-password-1!", NewPassword="New-password-2!")
    # the grant is for one's own password only
    code, _ = error_of(long_term(bed, plain, "iam").update_login_profile, UserName=variant.name, Password="Hijack-pw-9!")
    assert code == "AccessDenied"


def test_create_login_profile_keeps_reset_required_and_checks_the_policy(bed, iam):
    iam.update_account_password_policy(MinimumPasswordLength=20, RequireUppercaseCharacters=True)
    user = bed.create_user(name(), None, mfa=False)
    code, message = error_of(iam.create_login_profile, UserName=user.name, Password="short-Pass1!", PasswordResetRequired=True)
    assert code == "PasswordPolicyViolation" and "20 characters" in message
    code, _ = error_of(iam.create_login_profile, UserName=user.name, Password="x" * 24, PasswordResetRequired=True)
    assert code == "PasswordPolicyViolation"
    out = iam.create_login_profile(UserName=user.name, Password="A-long-enough-password-1", PasswordResetRequired=True)
    assert out["LoginProfile"]["PasswordResetRequired"] is True
    other = bed.create_user(name(), None, mfa=False)
    iam.create_login_profile(UserName=other.name, Password="A-long-enough-password-1")
    assert iam.get_login_profile(UserName=other.name)["LoginProfile"]["PasswordResetRequired"] is False


def report_rows(iam) -> dict[str, dict[str, str]]:
    iam.generate_credential_report()
    content = iam.get_credential_report()["Content"].decode()
    return {row["user"]: row for row in csv.DictReader(io.StringIO(content))}


def test_the_credential_report_mfa_active_follows_the_device(bed, iam):
    user = bed.create_user(name(), None, mfa=False)
    iam.create_login_profile(UserName=user.name, Password="Temp-password-1!")
    row = report_rows(iam)[user.name]
    assert row["mfa_active"] == "false" and row["password_enabled"] == "true"
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=user.name)["VirtualMFADevice"]
    seed = device["Base32StringSeed"].decode()
    now = step_at()
    iam.enable_mfa_device(
        UserName=user.name,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=code_for_step(seed, now - 1),
        AuthenticationCode2=code_for_step(seed, now),
    )
    assert report_rows(iam)[user.name]["mfa_active"] == "true"
    iam.deactivate_mfa_device(UserName=user.name, SerialNumber=device["SerialNumber"])
    assert report_rows(iam)[user.name]["mfa_active"] == "false"


def test_many_users_at_once_with_tags(bed, iam):
    prefix = name("many")
    start = time.monotonic()
    names = bed.create_users(prefix, 50, tags=[{"Key": "stsmfa:exempt", "Value": "true"}])
    assert time.monotonic() - start < 10
    assert names[0] == f"{prefix}0000" and len(names) == 50
    report = report_rows(iam)
    assert all(n in report for n in names)
    assert iam.list_user_tags(UserName=names[7])["Tags"] == [{"Key": "stsmfa:exempt", "Value": "true"}]
    assert bed.stats()["iam_calls"]["ListUserTags"] >= 1


def test_get_group_pages_its_members(bed, iam):
    group = name("big")
    iam.create_group(GroupName=group)
    names = bed.create_users(name("member"), 250)
    for n in names:
        iam.add_user_to_group(GroupName=group, UserName=n)
    first = iam.get_group(GroupName=group)
    assert len(first["Users"]) == 100 and first["IsTruncated"] is True
    seen = [u["UserName"] for page in iam.get_paginator("get_group").paginate(GroupName=group) for u in page["Users"]]
    assert seen == names
    small = iam.get_group(GroupName=group, MaxItems=7, Marker=first["Marker"])
    assert [u["UserName"] for u in small["Users"]] == names[100:107]
    last = iam.get_group(GroupName=group, MaxItems=100, Marker="200")
    assert len(last["Users"]) == 50 and last["IsTruncated"] is False and "Marker" not in last


def test_signatures_are_checked_over_the_body_as_sent(bed, admin):
    """An SDK that writes spaces as %20 (the Rust SDK does) signs that body; moto alone
    would re-encode the parsed form with `+` and refuse the signature."""
    import urllib.error
    import urllib.parse
    import urllib.request

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    group = name("sig")
    params = {"Action": "CreateGroup", "Version": "2010-05-08", "GroupName": group, "Path": "/with space/"}
    body = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    assert "%20" in body
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=bed.endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    creds = botocore.credentials.Credentials(admin.access_key_id, admin.secret_access_key)
    botocore.auth.SigV4Auth(creds, "iam", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=body.encode(), headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    assert status == 200 and "SignatureDoesNotMatch" not in text, text
    assert group in text
