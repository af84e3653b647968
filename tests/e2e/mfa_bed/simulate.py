"""IAM's policy simulator and the account states an audit needs, for the bed.

- `SimulateCustomPolicy` / `SimulatePrincipalPolicy` answered with the bed's
  evaluator: `ContextEntries` make the request context (so
  `aws:MultiFactorAuthPresent` can be false, true or absent), `aws:username` is
  the principal's name for SimulatePrincipalPolicy unless the caller gives one;
  `EvalDecision` is allowed / explicitDeny / implicitDeny and `MatchedStatements`
  names the policy (`SourcePolicyId`) and the statement (its Sid, else its index
  `#N`, in `SourcePolicyType`'s place AWS gives positions; see `statement_id`).
- `GetAccountAuthorizationDetails` paginated (`MaxItems`, `Marker`,
  `IsTruncated`): moto answers everything in one page.
- Admin helpers the server routes call: users in any account, thousands of users
  at once, a hardware (non-virtual) MFA device, a backdated access key, a
  password and its last use.

`apply()` installs the IAM hooks; patches.apply() calls it.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from moto.iam.access_control import IAMPolicy, IAMUserAccessKey
from moto.iam.exceptions import NotFoundException
from moto.core.responses import ActionResult
from moto.iam.models import AccessKeyLastUsed
from moto.iam.responses import IamResponse

from . import evaluator
from .patches import ACCOUNT_ID, PARTITION, STATE, BedError, iam_backend

_DECISIONS = {
    evaluator.Decision.ALLOW: "allowed",
    evaluator.Decision.EXPLICIT_DENY: "explicitDeny",
    evaluator.Decision.IMPLICIT_DENY: "implicitDeny",
}


def statement_id(statement: dict[str, Any], index: int) -> str:
    """A statement's name in MatchedStatements: its Sid, else `#index` (from 0)."""
    return str(statement.get("Sid") or f"#{index}")


def simulate(
    policies: list[tuple[str, dict[str, Any]]],
    action: str,
    resource: str,
    context: dict[str, str],
) -> dict[str, Any]:
    """One EvaluationResult: the decision and the statements that decided it
    (the Deny that matched, else every Allow that matched)."""
    allows: list[dict[str, Any]] = []
    denies: list[dict[str, Any]] = []
    for policy_id, document in policies:
        statements = document.get("Statement", [])
        if not isinstance(statements, list):
            statements = [statements]
        for index, statement in enumerate(statements):
            try:
                applies = evaluator.statement_applies(statement, action, resource, context)
            except evaluator.UnsupportedCondition as exc:
                raise BedError(500, "InternalFailure", f"mfa_bed: {exc}") from exc
            if not applies:
                continue
            matched = {
                "SourcePolicyId": policy_id,
                "SourcePolicyType": statement_id(statement, index),
            }
            if statement.get("Effect") == "Deny":
                denies.append(matched)
            elif statement.get("Effect") == "Allow":
                allows.append(matched)
    if denies:
        decision, matched = evaluator.Decision.EXPLICIT_DENY, denies
    elif allows:
        decision, matched = evaluator.Decision.ALLOW, allows
    else:
        decision, matched = evaluator.Decision.IMPLICIT_DENY, []
    return {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": _DECISIONS[decision],
        "MatchedStatements": matched,
        "MissingContextValues": [],
    }


def _context(entries: list[dict[str, Any]] | None) -> dict[str, str]:
    """ContextEntries -> request context (first value of each key; JSON-ish bools
    lower-cased as IAM compares them)."""
    context: dict[str, str] = {}
    for entry in entries or []:
        name = entry.get("ContextKeyName")
        values = entry.get("ContextKeyValues") or []
        if not name or not values:
            continue
        value = str(values[0])
        if (entry.get("ContextKeyType") or "").lower().startswith("boolean"):
            value = value.lower()
        context[str(name)] = value
    return context


def _document(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        raise BedError(400, "MalformedPolicyDocument", "The policy is not valid JSON") from None
    if not isinstance(document, dict):
        raise BedError(400, "MalformedPolicyDocument", "The policy is not a JSON object")
    return document


def _results(
    params: dict[str, Any], policies: list[tuple[str, dict[str, Any]]], context: dict[str, str]
) -> ActionResult:
    actions = params.get("ActionNames") or []
    if not actions:
        raise BedError(400, "ValidationError", "ActionNames must not be empty")
    resources = params.get("ResourceArns") or ["*"]
    results = [
        simulate(policies, action, resource, context)
        for action in actions
        for resource in resources
    ]
    start = int(params.get("Marker") or 0)
    size = int(params.get("MaxItems") or 1000)
    page = results[start : start + size]
    more = start + size < len(results)
    out: dict[str, Any] = {"EvaluationResults": page, "IsTruncated": more}
    if more:
        out["Marker"] = str(start + size)
    return ActionResult(out)


def _simulate_custom_policy(self: IamResponse) -> ActionResult:
    params = self._get_params()
    documents = params.get("PolicyInputList") or []
    if not documents:
        raise BedError(400, "ValidationError", "PolicyInputList must not be empty")
    policies = [(f"PolicyInputList.{i + 1}", _document(d)) for i, d in enumerate(documents)]
    return _results(params, policies, _context(params.get("ContextEntries")))


_USER_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):user/(?:[^/]+/)*([^/]+)")


def user_policies(account: str, user_name: str) -> list[tuple[str, dict[str, Any]]]:
    """A user's identity policies (inline, attached, its groups'), as the bed's
    authorisation collects them, each with a name for MatchedStatements."""
    key = IAMUserAccessKey.__new__(IAMUserAccessKey)
    key.account_id, key.partition, key._owner_user_name = account, PARTITION, user_name
    out = []
    for policy in key.collect_policies():
        name = getattr(policy, "name", None) or getattr(policy, "arn", None) or "policy"
        out.append((str(name), IAMPolicy(policy)._policy_json))
    return out


def _simulate_principal_policy(self: IamResponse) -> ActionResult:
    params = self._get_params()
    source = str(params.get("PolicySourceArn") or "")
    match = _USER_ARN.fullmatch(source)
    if match is None:
        raise BedError(400, "InvalidInput", f"PolicySourceArn {source!r} is not an IAM user ARN")
    account, user_name = match.groups()
    if user_name not in iam_backend(account).users:
        raise NotFoundException(f"The user with name {user_name} cannot be found.")
    policies = user_policies(account, user_name)
    for i, d in enumerate(params.get("PolicyInputList") or []):
        policies.append((f"PolicyInputList.{i + 1}", _document(d)))
    context = {"aws:username": user_name}
    context.update(_context(params.get("ContextEntries")))
    return _results(params, policies, context)


_orig_get_account_authorization_details = IamResponse.get_account_authorization_details


def _get_account_authorization_details(self: IamResponse) -> ActionResult:
    """moto's answer, cut into pages of MaxItems entries (users, then groups,
    roles, policies), with Marker/IsTruncated as IAM pages it."""
    whole = _orig_get_account_authorization_details(self)
    data = whole.result if hasattr(whole, "result") else whole._result  # type: ignore[attr-defined]
    lists = ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"]
    items = [(name, item) for name in lists for item in list(data.get(name) or [])]
    start = int(self._get_param("Marker") or 0)
    size = int(self._get_param("MaxItems") or 100)
    page = items[start : start + size]
    out: dict[str, Any] = {name: [item for n, item in page if n == name] for name in lists}
    out["IsTruncated"] = start + size < len(items)
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return ActionResult(out)


# ----------------------------------------------------------------- admin helpers


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def bulk_users(prefix: str, count: int, account: str = ACCOUNT_ID, key: bool = True) -> dict[str, Any]:
    """`count` users PREFIX0..PREFIX{count-1} (no policy, no MFA), each with an
    access key unless key is false; straight into the backend, so 2,000 take
    seconds."""
    backend = iam_backend(account)
    with STATE.lock:
        for i in range(count):
            name = f"{prefix}{i}"
            backend.create_user(region_name="us-east-1", user_name=name)
            if key:
                backend.create_access_key(name)
    return {"created": count, "account": account}


def user_state(body: dict[str, Any]) -> dict[str, Any]:
    """Change what an audit reads about one user: `password` (a console
    password), `password_last_used_days` (its last use that many days ago),
    `key_age_days` (every access key created that many days ago, and last used
    then), `hardware_mfa` (enable a device with this non-virtual serial)."""
    account = str(body.get("account") or ACCOUNT_ID)
    backend = iam_backend(account)
    name = str(body.get("user") or "")
    with STATE.lock:
        user = backend.users.get(name)
        if user is None:
            raise KeyError(f"no user {name} in {account}")
        if body.get("password"):
            user.password = str(body["password"])
        if body.get("password_last_used_days") is not None:
            user.password_last_used = _now() - datetime.timedelta(
                days=float(body["password_last_used_days"])
            )
        if body.get("key_age_days") is not None:
            then = _now() - datetime.timedelta(days=float(body["key_age_days"]))
            for key in user.access_keys:
                key.create_date = then
                key.last_used = AccessKeyLastUsed(timestamp=then, service="s3", region="us-east-1")
        if body.get("hardware_mfa"):
            serial = str(body["hardware_mfa"])
            if ":mfa/" in serial:
                raise ValueError("a hardware serial is not a virtual device ARN (e.g. GAHT12345678)")
            user.enable_mfa_device(serial, "123456", "654321")
    return {
        "user": name,
        "account": account,
        "mfa_devices": list(user.mfa_devices),
        "keys": [k.access_key_id for k in user.access_keys],
    }


_applied = False


def apply() -> None:
    """Install the simulator and pagination hooks; idempotent."""
    global _applied
    if _applied:
        return
    IamResponse.simulate_custom_policy = _simulate_custom_policy
    IamResponse.simulate_principal_policy = _simulate_principal_policy
    IamResponse.get_account_authorization_details = _get_account_authorization_details
    _applied = True
