"""The bed's policy simulator (SimulateCustomPolicy / SimulatePrincipalPolicy
answered with its evaluator, context keys honoured), the credential report, the
paginated GetAccountAuthorizationDetails, users in a second account, hardware
MFA devices, bulk users and backdated keys: what `stsmfa admin audit` and
`check-policy` read.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed_simulate.py
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

from bed_clients import long_term, with_session
from mfa_bed import policies, totp

_names = itertools.count()

ABSENT: list[dict] = []
NO_MFA = [{"ContextKeyName": "aws:MultiFactorAuthPresent", "ContextKeyValues": ["false"], "ContextKeyType": "boolean"}]
MFA = [
    {"ContextKeyName": "aws:MultiFactorAuthPresent", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"},
    {"ContextKeyName": "aws:MultiFactorAuthAge", "ContextKeyValues": ["60"], "ContextKeyType": "numeric"},
]


def name(prefix: str) -> str:
    return f"{prefix}{next(_names)}-{os.getpid()}"


@pytest.fixture(scope="module")
def admin(bed):
    return bed.create_user(name("simadmin"), policies.allow_actions(["*"]), mfa=False)


@pytest.fixture(scope="module")
def iam(bed, admin):
    return long_term(bed, admin, "iam")


def decisions(iam, document: dict, actions: list[str], context: list[dict], resource: str = "*") -> dict:
    out = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps(document)],
        ActionNames=actions,
        ResourceArns=[resource],
        ContextEntries=context,
    )
    return {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}


def test_custom_policy_decisions_follow_the_mfa_context_key(iam):
    aws_sample = policies.deny_all_except_listed_if_no_mfa()
    actions = ["s3:ListAllMyBuckets", "iam:ListVirtualMFADevices", "iam:ChangePassword"]
    assert decisions(iam, aws_sample, actions, ABSENT) == {
        "s3:ListAllMyBuckets": "explicitDeny",
        "iam:ListVirtualMFADevices": "allowed",
        "iam:ChangePassword": "explicitDeny",
    }
    assert decisions(iam, aws_sample, actions, NO_MFA)["s3:ListAllMyBuckets"] == "explicitDeny"
    assert decisions(iam, aws_sample, actions, MFA) == {
        "s3:ListAllMyBuckets": "allowed",
        "iam:ListVirtualMFADevices": "allowed",
        "iam:ChangePassword": "allowed",
    }


def test_the_bool_variant_lets_a_request_without_the_key_through(iam):
    console_only = policies.bool_console_only()
    assert decisions(iam, console_only, ["s3:GetObject"], ABSENT) == {"s3:GetObject": "allowed"}
    assert decisions(iam, console_only, ["s3:GetObject"], NO_MFA) == {"s3:GetObject": "explicitDeny"}


def test_nothing_allowed_is_an_implicit_deny_and_matched_statements_are_named(iam):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadS3", "Effect": "Allow", "Action": "s3:Get*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}},
        ],
    }
    out = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps(document)],
        ActionNames=["s3:GetObject", "s3:GetBucketAcl", "ec2:RunInstances"],
        ContextEntries=NO_MFA,
    )["EvaluationResults"]
    by_action = {r["EvalActionName"]: r for r in out}
    assert by_action["ec2:RunInstances"]["EvalDecision"] == "implicitDeny"
    assert by_action["ec2:RunInstances"].get("MatchedStatements", []) == []
    assert by_action["s3:GetBucketAcl"]["EvalDecision"] == "allowed"
    assert [m["SourcePolicyType"] for m in by_action["s3:GetBucketAcl"]["MatchedStatements"]] == ["ReadS3"]
    assert by_action["s3:GetObject"]["EvalDecision"] == "explicitDeny"
    assert by_action["s3:GetObject"]["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "#1"}
    ]


def test_username_variable_needs_the_context_entry(iam):
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:DeleteVirtualMFADevice",
                       "Resource": "arn:aws:iam::*:mfa/${aws:username}"}],
    }
    own = "arn:aws:iam::123456789012:mfa/probe"
    assert decisions(iam, document, ["iam:DeleteVirtualMFADevice"], ABSENT, own) == {
        "iam:DeleteVirtualMFADevice": "implicitDeny"
    }
    who = [{"ContextKeyName": "aws:username", "ContextKeyValues": ["probe"], "ContextKeyType": "string"}]
    assert decisions(iam, document, ["iam:DeleteVirtualMFADevice"], who, own) == {
        "iam:DeleteVirtualMFADevice": "allowed"
    }


def test_principal_policy_collects_group_policies_and_the_username(bed, iam):
    user = bed.create_user(name("simuser"), None)
    group = name("ForceMFA")
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="force",
                         PolicyDocument=json.dumps(policies.deny_all_except_listed_if_no_mfa()))
    iam.add_user_to_group(GroupName=group, UserName=user.name)
    own_device = f"arn:aws:iam::123456789012:mfa/{user.name}"

    def principal(actions, context, resource="*"):
        out = iam.simulate_principal_policy(
            PolicySourceArn=user.arn, ActionNames=actions, ResourceArns=[resource], ContextEntries=context
        )["EvaluationResults"]
        return {r["EvalActionName"]: r["EvalDecision"] for r in out}

    assert principal(["s3:GetObject"], ABSENT) == {"s3:GetObject": "explicitDeny"}
    assert principal(["s3:GetObject"], MFA) == {"s3:GetObject": "allowed"}
    # ${aws:username} resolves to the principal's name without a context entry.
    assert principal(["iam:CreateVirtualMFADevice"], ABSENT, own_device) == {"iam:CreateVirtualMFADevice": "allowed"}
    with pytest.raises(ClientError) as info:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:user/nobody-here", ActionNames=["s3:GetObject"]
        )
    assert info.value.response["Error"]["Code"] == "NoSuchEntity"


def test_the_simulator_is_an_iam_action_a_policy_can_deny(bed):
    user = bed.create_user(name("nosim"), policies.allow_actions(["iam:GetUser"]), mfa=False)
    with pytest.raises(ClientError) as info:
        long_term(bed, user, "iam").simulate_custom_policy(
            PolicyInputList=[json.dumps(policies.allow_all())], ActionNames=["s3:GetObject"]
        )
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert "iam:SimulateCustomPolicy" in info.value.response["Error"]["Message"]


def report(iam) -> dict[str, dict]:
    for _ in range(20):
        if iam.generate_credential_report()["State"] == "COMPLETE":
            break
        time.sleep(0.1)
    content = iam.get_credential_report()["Content"].decode()
    return {row["user"]: row for row in csv.DictReader(io.StringIO(content))}


def test_credential_report_shows_passwords_mfa_hardware_devices_and_backdated_keys(bed, iam):
    virtual = bed.create_user(name("virt"), None)
    hardware = bed.create_user(name("hard"), None, mfa=False)
    bed.user_state(hardware.name, hardware_mfa="GAHT12345678", password="Hunter2-Hunter2",
                   password_last_used_days=3, key_age_days=200)
    rows = report(iam)
    assert rows[virtual.name]["mfa_active"] == "true"
    assert rows[virtual.name]["password_enabled"] == "false"
    row = rows[hardware.name]
    assert row["mfa_active"] == "true" and row["password_enabled"] == "true"
    assert row["password_last_used"][:4].isdigit()
    rotated = time.mktime(time.strptime(row["access_key_1_last_rotated"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 199 < (time.time() - rotated) / 86400 < 201
    assert row["access_key_1_last_used_date"][:10] == row["access_key_1_last_rotated"][:10]
    # The hardware device is not a virtual one: ListVirtualMFADevices does not list it.
    assigned = iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    users = {d["User"]["UserName"] for d in assigned}
    assert virtual.name in users and hardware.name not in users
    with pytest.raises(Exception):
        bed.user_state(hardware.name, hardware_mfa="arn:aws:iam::123456789012:mfa/x")


def test_account_authorization_details_pages(bed, iam):
    prefix = name("page")
    bed.bulk_users(prefix, 25, key=False)
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"Filter": ["User", "Group", "LocalManagedPolicy"], "MaxItems": 10}
        if marker:
            kwargs["Marker"] = marker
        out = iam.get_account_authorization_details(**kwargs)
        pages += 1
        assert len(out["UserDetailList"]) + len(out["GroupDetailList"]) + len(out["Policies"]) <= 10
        seen += [u["UserName"] for u in out["UserDetailList"]]
        if not out["IsTruncated"]:
            break
        marker = out["Marker"]
    mine = [u for u in seen if u.startswith(prefix)]
    assert sorted(mine) == sorted(f"{prefix}{i}" for i in range(25))
    assert len(seen) == len(set(seen)) and pages >= 3


def test_bulk_users_are_made_in_seconds(bed, iam):
    prefix = name("bulk")
    started = time.monotonic()
    bed.bulk_users(prefix, 2000)
    assert time.monotonic() - started < 20
    rows = report(iam)
    made = [u for u in rows if u.startswith(prefix)]
    assert len(made) == 2000
    assert rows[f"{prefix}1999"]["access_key_1_active"] == "true"


def test_a_second_account_has_its_own_users_and_keys(bed):
    other = "444455556666"
    admin2 = bed.create_user(name("admin2"), policies.allow_actions(["*"]), mfa=False, account=other)
    assert admin2.arn.startswith(f"arn:aws:iam::{other}:user/")
    sts = long_term(bed, admin2, "sts")
    assert sts.get_caller_identity()["Account"] == other
    iam2 = long_term(bed, admin2, "iam")
    bed.create_user(name("dev2-"), None, account=other)
    users = [u["UserName"] for u in iam2.list_users()["Users"]]
    assert admin2.name in users and not any(u.startswith("simadmin") for u in users)


def test_a_second_accounts_user_gets_mfa_sessions_in_that_account(bed):
    other = "444455556666"
    admin2 = bed.create_user(name("mfa2-"), policies.allow_actions(["iam:ListUsers"], require_mfa=True),
                             account=other)
    assert admin2.serial.startswith(f"arn:aws:iam::{other}:mfa/")
    sts = long_term(bed, admin2, "sts")
    # Its long-term key is denied by its MFA policy; the MFA session is allowed, in its account.
    with pytest.raises(ClientError):
        long_term(bed, admin2, "iam").list_users()
    creds = sts.get_session_token(SerialNumber=admin2.serial, TokenCode=totp(admin2.seed))["Credentials"]
    ident = with_session(bed, creds, "sts").get_caller_identity()
    assert ident["Account"] == other and ident["Arn"] == admin2.arn
    users = [u["UserName"] for u in with_session(bed, creds, "iam").list_users()["Users"]]
    assert admin2.name in users and not any(u.startswith("simadmin") for u in users)
    info = bed.session_info(creds["AccessKeyId"])
    assert info["mfa"] is True and info["user"] == admin2.name
