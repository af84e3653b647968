"""Identity policy documents for test users.

Based on AWS's published example "DenyAllExceptListedIfNoMFA" (users manage their
own virtual MFA device; everything else needs MFA). Each function returns a fresh
dict, so callers may modify it.
"""

from __future__ import annotations

from typing import Any

VERSION = "2012-10-17"

# Actions a user may call before having MFA (AWS's example list).
NO_MFA_ACTIONS = [
    "iam:CreateVirtualMFADevice",
    "iam:EnableMFADevice",
    "iam:GetUser",
    "iam:ListMFADevices",
    "iam:ListVirtualMFADevices",
    "iam:ResyncMFADevice",
    "sts:GetSessionToken",
]


def _self_manage_statements() -> list[dict[str, Any]]:
    return [
        {
            "Sid": "AllowViewAccountInfo",
            "Effect": "Allow",
            "Action": "iam:ListVirtualMFADevices",
            "Resource": "*",
        },
        {
            "Sid": "AllowManageOwnVirtualMFADevice",
            "Effect": "Allow",
            "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"],
            "Resource": "arn:aws:iam::*:mfa/${aws:username}",
        },
        {
            "Sid": "AllowManageOwnUserMFA",
            "Effect": "Allow",
            "Action": [
                "iam:DeactivateMFADevice",
                "iam:EnableMFADevice",
                "iam:GetUser",
                "iam:ListMFADevices",
                "iam:ResyncMFADevice",
            ],
            "Resource": "arn:aws:iam::*:user/${aws:username}",
        },
    ]


def _deny_without_mfa(not_actions: list[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyAllExceptListedIfNoMFA",
        "Effect": "Deny",
        "NotAction": list(not_actions),
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    }


def _allow_all(sid: str = "AllowAllWithMFA") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": "*", "Resource": "*"}


def self_service_only() -> dict[str, Any]:
    """What a new user holds before MFA: manage their own device, nothing else."""
    return {
        "Version": VERSION,
        "Statement": _self_manage_statements() + [_deny_without_mfa(NO_MFA_ACTIONS)],
    }


def deny_all_except_listed_if_no_mfa() -> dict[str, Any]:
    """AWS's example plus Allow * so that ordinary calls work once MFA is present."""
    doc = self_service_only()
    doc["Statement"].append(_allow_all())
    return doc


def with_password_change() -> dict[str, Any]:
    """As deny_all_except_listed_if_no_mfa, also letting users change a password."""
    doc = deny_all_except_listed_if_no_mfa()
    for statement in doc["Statement"]:
        if statement.get("Sid") == "DenyAllExceptListedIfNoMFA":
            statement["NotAction"] += ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"]
    return doc


def mfa_age(max_seconds: int = 3600) -> dict[str, Any]:
    """Everything allowed only while the MFA authentication is younger than max_seconds."""
    return {
        "Version": VERSION,
        "Statement": _self_manage_statements()
        + [
            {
                "Sid": "AllowGetSessionToken",
                "Effect": "Allow",
                "Action": "sts:GetSessionToken",
                "Resource": "*",
            },
            {
                "Sid": "AllowAllWithRecentMFA",
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "NumericLessThan": {"aws:MultiFactorAuthAge": str(int(max_seconds))}
                },
            },
        ],
    }


def bool_console_only() -> dict[str, Any]:
    """The plain-Bool variant: denies non-MFA sessions but lets long-term keys through
    (the key is absent for them, so Bool does not match), as on AWS."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyWithoutMFA",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
            },
            _allow_all("AllowAll"),
        ],
    }


def allow_all() -> dict[str, Any]:
    """No MFA requirement at all."""
    return {"Version": VERSION, "Statement": [_allow_all("AllowAll")]}
