"""Policy documents for test users and roles.

User policies are based on AWS's published example "DenyAllExceptListedIfNoMFA"
(users manage their own virtual MFA device; everything else needs MFA); role trust
and permission policies follow. Each function returns a fresh dict, so callers may
modify it.
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


# ----------------------------------------------------------- roles: trust policies

DEFAULT_ACCOUNT = "123456789012"


def trust(
    principals: str | list[str],
    mfa: bool = True,
    external_id: str | None = None,
    max_mfa_age: int | None = None,
) -> dict[str, Any]:
    """A role trust policy letting `principals` (ARNs, account ids or "*") call
    sts:AssumeRole: with MFA present (Bool aws:MultiFactorAuthPresent true) unless
    mfa=False, the given sts:ExternalId (StringEquals) and, with max_mfa_age, an MFA
    sign-in younger than that many seconds (NumericLessThan aws:MultiFactorAuthAge)."""
    condition: dict[str, dict[str, str]] = {}
    if mfa:
        condition["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    if external_id is not None:
        condition["StringEquals"] = {"sts:ExternalId": external_id}
    if max_mfa_age is not None:
        condition["NumericLessThan"] = {"aws:MultiFactorAuthAge": str(int(max_mfa_age))}
    statement: dict[str, Any] = {
        "Sid": "AllowAssumeRole",
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": VERSION, "Statement": [statement]}


def trust_user(user_arn: str, **kwargs: Any) -> dict[str, Any]:
    """Trust one IAM user (by ARN); keyword arguments as for trust()."""
    return trust(user_arn, **kwargs)


def trust_account(account: str = DEFAULT_ACCOUNT, **kwargs: Any) -> dict[str, Any]:
    """Trust every principal of an account (`arn:aws:iam::ACCOUNT:root`), whose own
    identity policies must then allow sts:AssumeRole; keyword arguments as for trust()."""
    return trust(f"arn:aws:iam::{account}:root", **kwargs)


def trust_role(role_arn: str, **kwargs: Any) -> dict[str, Any]:
    """Trust sessions of another role (role chaining); keyword arguments as for trust()."""
    return trust(role_arn, **kwargs)


# ------------------------------------------------------- roles: permission policies


def allow_actions(actions: str | list[str], require_mfa: bool = False) -> dict[str, Any]:
    """Allow `actions` on every resource; with require_mfa, deny everything to
    sessions without MFA (BoolIfExists aws:MultiFactorAuthPresent false)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowActions", "Effect": "Allow", "Action": actions, "Resource": "*"}
    ]
    if require_mfa:
        statements.append(
            {
                "Sid": "DenyAllIfNoMFA",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            }
        )
    return {"Version": VERSION, "Statement": statements}
