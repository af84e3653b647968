"""What `stsmfa admin setup|onboard|sync` need from IAM that moto 5.2.5 lacks.

- ChangePassword: the caller's own password; the old one must match, the new one
  must satisfy the account password policy, and PasswordResetRequired is cleared.
  As on AWS, the password policy's AllowUsersToChangePassword lets every user call
  ChangePassword (and GetAccountPasswordPolicy) on themselves without an Allow in a
  policy; an explicit Deny (DenyAllExceptListedIfNoMFA without it in its NotAction)
  still wins, which is why the sample policy blocks the first password change.
- CreateLoginProfile / UpdateLoginProfile: PasswordResetRequired is kept, and the
  password is checked against the account password policy (PasswordPolicyViolation).
- Signatures of IAM requests are checked over the body as sent: moto re-encodes the
  parsed form (spaces as `+`), which differs from an SDK that writes `%20`.
- GetGroup pages its members as IAM does (MaxItems, default 100; Marker; IsTruncated);
  moto answers every member at once.
- POST /stsmfa-bed/create-users {"prefix", "count", "tags"}: many plain users at once
  (no keys, no password, no device), for the 300-user sync test.

Installed by `install()`, which `patches.apply()` calls.
"""

from __future__ import annotations

import string
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.iam.access_control import IAMRequestBase
from moto.iam.responses import IamResponse

from . import evaluator, patches
from .patches import STATE, BedError, caller_of, caller_user_name, iam_backend

# Actions AllowUsersToChangePassword grants every user on themselves.
_SELF_PASSWORD_ACTIONS = {"iam:changepassword", "iam:getaccountpasswordpolicy"}


def _policy_violations(password: str) -> list[str]:
    try:
        policy = iam_backend().get_account_password_policy()
    except Exception:  # noqa: BLE001 - no policy set: AWS's defaults (length 8.. in practice 6)
        return [] if len(password) >= 6 else ["at least 6 characters"]
    problems = []
    if len(password) < (policy.minimum_password_length or 6):
        problems.append(f"at least {policy.minimum_password_length} characters")
    if policy.require_lowercase_characters and not any(c.islower() for c in password):
        problems.append("a lowercase letter")
    if policy.require_uppercase_characters and not any(c.isupper() for c in password):
        problems.append("an uppercase letter")
    if policy.require_numbers and not any(c.isdigit() for c in password):
        problems.append("a number")
    if policy.require_symbols and not any(c in string.punctuation for c in password):
        problems.append("a symbol")
    return problems


def _check_password(password: str) -> None:
    problems = _policy_violations(password)
    if problems:
        raise BedError(
            400,
            "PasswordPolicyViolation",
            "Password does not conform to the account password policy: needs " + ", ".join(problems),
        )


def _change_password(self: IamResponse) -> Any:
    name = caller_user_name(self.get_access_key())
    if name is None:
        raise BedError(400, "ValidationError", "ChangePassword is for IAM users only")
    user = self.backend.get_user(name)
    if not user.password:
        raise BedError(404, "NoSuchEntity", f"Login profile for {name} not found")
    if self._get_param("OldPassword") != user.password:
        raise BedError(400, "InvalidInput", "The old password is incorrect.")
    new = self._get_param("NewPassword") or ""
    _check_password(new)
    if new == user.password:
        raise BedError(400, "PasswordPolicyViolation", "The new password must differ from the old one")
    user.password = new
    user.password_reset_required = False
    return EmptyResult()


_orig_create_login_profile = IamResponse.create_login_profile


def _create_login_profile(self: IamResponse) -> Any:
    _check_password(self._get_param("Password") or "")
    result = _orig_create_login_profile(self)
    user = self.backend.get_user(self._get_param("UserName"))
    user.password_reset_required = self._get_param("PasswordResetRequired") in ("true", True)
    result = ActionResult(
        {
            "LoginProfile": {
                "UserName": user.name,
                "CreateDate": user.create_date,
                "PasswordResetRequired": user.password_reset_required,
            }
        }
    )
    return result


_orig_check_action_permitted = None


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    try:
        return _orig_check_action_permitted(self, resource)
    except BedError as exc:
        action = self._action.lower()
        if action not in _SELF_PASSWORD_ACTIONS:
            raise
        caller = caller_of(self._access_key)
        if caller is None or caller.user is None or caller.session is not None and caller.session.is_role:
            raise
        policy = getattr(iam_backend(caller.account), "account_password_policy", None)
        if policy is None or not policy.allow_users_to_change_password:
            raise
        decision = patches._evaluate(
            evaluator.evaluate, caller.policies(), self._action, resource, caller.context()
        )
        if decision is evaluator.Decision.EXPLICIT_DENY:
            raise
        if action == "iam:changepassword" and resource not in ("*", caller.user.arn):
            raise
        del exc


_orig_setup_class = IamResponse.setup_class


def _setup_class(self: IamResponse, request: Any, full_url: str, headers: Any, *args: Any, **kwargs: Any) -> Any:
    # Cache the raw body before werkzeug parses the form, so that moto's
    # signature check sees the bytes the client signed.
    get_data = getattr(request, "get_data", None)
    if get_data is not None and getattr(request, "_cached_data", None) is None:
        try:
            get_data(cache=True, parse_form_data=False)
        except Exception:  # noqa: BLE001 - not a werkzeug request
            pass
    return _orig_setup_class(self, request, full_url, headers, *args, **kwargs)


def _get_group(self: IamResponse) -> Any:
    group = self.backend.get_group(self._get_param("GroupName"))
    try:
        max_items = int(self._get_param("MaxItems") or 100)
        start = int(self._get_param("Marker") or 0)
    except ValueError:
        raise BedError(400, "ValidationError", "MaxItems and Marker must be integers") from None
    if not 1 <= max_items <= 1000:
        raise BedError(400, "ValidationError", "MaxItems must be between 1 and 1000")
    users = group.users[start : start + max_items]
    result: dict[str, Any] = {"Group": group, "Users": users, "IsTruncated": False}
    if start + max_items < len(group.users):
        result["IsTruncated"] = True
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


def create_users(prefix: str, count: int, tags: list[dict[str, str]] | None = None) -> list[str]:
    """Plain users (no keys, password or device), created in one request."""
    backend = iam_backend()
    names = []
    with STATE.lock:
        for i in range(count):
            name = f"{prefix}{i:04d}"
            backend.create_user(region_name="us-east-1", user_name=name, tags=tags or [])
            names.append(name)
    return names


_installed = False


def install() -> None:
    global _installed, _orig_check_action_permitted
    if _installed:
        return
    IamResponse.change_password = _change_password
    IamResponse.get_group = _get_group
    IamResponse.create_login_profile = _create_login_profile
    IamResponse.setup_class = _setup_class
    _orig_check_action_permitted = IAMRequestBase.check_action_permitted
    IAMRequestBase.check_action_permitted = _check_action_permitted
    _installed = True
