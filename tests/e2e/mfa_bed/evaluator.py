"""IAM identity- and trust-policy evaluation with conditions, as AWS documents it.

Pure functions with no moto import, so tests can exercise them directly.

A request context maps condition keys (case-insensitive) to string values; a key
that is absent from the context is simply not in the dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any


class Decision(Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class UnsupportedCondition(ValueError):
    """A condition operator this evaluator does not implement."""


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    # IAM wildcards are only * and ? (no [...] classes as in fnmatch).
    regex = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern
    )
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def substitute(text: str, context: Mapping[str, str]) -> str | None:
    """Replace ${key} policy variables; None when a variable has no value.

    AWS treats an element whose variable cannot be resolved as not matching.
    """
    missing = False

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1).strip()
        if name in _ESCAPES:
            return _ESCAPES[name]
        value = lookup(context, name)
        if value is None:
            missing = True
            return ""
        return value

    out = _VARIABLE.sub(repl, text)
    return None if missing else out


def lookup(context: Mapping[str, str], key: str) -> str | None:
    lowered = key.lower()
    for k, v in context.items():
        if k.lower() == lowered:
            return v
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _numeric(cmp):
    def check(actual: str, expected: str) -> bool:
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and cmp(a, e)

    return check


def _bool(actual: str, expected: str) -> bool:
    a, e = actual.lower(), expected.lower()
    return a in ("true", "false") and a == e


# base operator -> (comparison, negated). A negated operator matches when no
# listed value compares equal.
_OPERATORS = {
    "StringEquals": (lambda a, e: a == e, False),
    "StringNotEquals": (lambda a, e: a == e, True),
    "StringEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), True),
    "StringLike": (lambda a, e: _glob(e, a), False),
    "StringNotLike": (lambda a, e: _glob(e, a), True),
    "NumericEquals": (_numeric(lambda a, e: a == e), False),
    "NumericNotEquals": (_numeric(lambda a, e: a == e), True),
    "NumericLessThan": (_numeric(lambda a, e: a < e), False),
    "NumericLessThanEquals": (_numeric(lambda a, e: a <= e), False),
    "NumericGreaterThan": (_numeric(lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, e: a >= e), False),
    "Bool": (_bool, False),
    "ArnEquals": (lambda a, e: _glob(e, a), False),
    "ArnLike": (lambda a, e: _glob(e, a), False),
    "ArnNotEquals": (lambda a, e: _glob(e, a), True),
    "ArnNotLike": (lambda a, e: _glob(e, a), True),
}


def _as_strings(values: Any) -> list[str]:
    if not isinstance(values, list):
        values = [values]
    # JSON true/false in a policy mean the strings "true"/"false".
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in values]


def condition_matches(
    operator: str, key: str, expected: Any, context: Mapping[str, str]
) -> bool:
    """One operator/key pair of a Condition block.

    Absent key: an ...IfExists operator matches; a plain operator does not,
    except the negated ones (StringNotEquals, NumericNotEquals, ...), which AWS
    documents as matching an absent key. Null tests presence itself.
    """
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        raise UnsupportedCondition(f"set operator {operator} is not supported")
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    expected_values = _as_strings(expected)
    actual = lookup(context, key)

    if base == "Null":
        if if_exists:
            raise UnsupportedCondition("NullIfExists is not an IAM operator")
        want_absent = expected_values[0].lower() == "true"
        return (actual is None) == want_absent

    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not supported")
    compare, negated = _OPERATORS[base]

    if actual is None:
        return if_exists or negated

    resolved = [substitute(v, context) for v in expected_values]
    hit = any(v is not None and compare(actual, v) for v in resolved)
    return not hit if negated else hit


def conditions_match(block: Mapping[str, Any] | None, context: Mapping[str, str]) -> bool:
    """A whole Condition block: every operator and every key must match."""
    for operator, pairs in (block or {}).items():
        for key, expected in pairs.items():
            if not condition_matches(operator, key, expected, context):
                return False
    return True


def _listify(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    # Action names are case-insensitive in IAM.
    return any(_glob(p, action, ignore_case=True) for p in patterns)


def _resource_matches(patterns: Iterable[str], resource: str, context: Mapping[str, str]) -> bool:
    for pattern in patterns:
        resolved = substitute(pattern, context)
        if resolved is not None and _glob(resolved, resource):
            return True
    return False


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "NotAction" in statement:
        if _action_matches(_listify(statement["NotAction"]), action):
            return False
    elif not _action_matches(_listify(statement.get("Action", [])), action):
        return False

    if "NotResource" in statement:
        if _resource_matches(_listify(statement["NotResource"]), resource, context):
            return False
    elif not _resource_matches(_listify(statement.get("Resource", [])), resource, context):
        return False

    return conditions_match(statement.get("Condition"), context)


def evaluate(
    policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str],
) -> Decision:
    """Identity-policy decision: an explicit Deny wins, then any Allow."""
    allowed = False
    for policy in policies:
        for statement in _listify(policy.get("Statement", [])):
            if not statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ACCOUNT_ROOT = re.compile(r"arn:[a-z-]+:iam::([0-9]{12}):root")


def principal_matches(entry: str, principals: Iterable[str], account: str) -> bool:
    """One AWS principal of a resource-based policy against the caller.

    `principals` are the ARNs that name the caller (an IAM user's ARN; for a role
    session the role's ARN and the assumed-role session ARN), `account` its
    account. `*` is anyone; an account id or `arn:...:iam::ID:root` is every
    principal of that account. IAM allows no other wildcards in principals.
    """
    if entry == "*":
        return True
    if _ACCOUNT_ID.fullmatch(entry):
        return entry == account
    root = _ACCOUNT_ROOT.fullmatch(entry)
    if root:
        return root.group(1) == account
    return entry in set(principals)


def _principal_block_matches(block: Any, principals: Iterable[str], account: str) -> bool:
    if block == "*":
        return True
    if not isinstance(block, Mapping):
        return False
    # Service, Federated and CanonicalUser principals never name an IAM caller.
    entries = _listify(block.get("AWS", []))
    return any(principal_matches(str(e), principals, account) for e in entries)


def evaluate_trust(
    policy: Mapping[str, Any],
    action: str,
    principals: Iterable[str],
    account: str,
    context: Mapping[str, str],
) -> Decision:
    """A role trust policy (resource-based, no Resource element) for one caller:
    a statement applies when its Principal (or NotPrincipal) covers the caller,
    its Action the action and its Condition the context; an explicit Deny wins."""
    principals = list(principals)
    allowed = False
    for statement in _listify(policy.get("Statement", [])):
        if "NotPrincipal" in statement:
            if _principal_block_matches(statement["NotPrincipal"], principals, account):
                continue
        elif not _principal_block_matches(statement.get("Principal"), principals, account):
            continue
        if "NotAction" in statement:
            if _action_matches(_listify(statement["NotAction"]), action):
                continue
        elif not _action_matches(_listify(statement.get("Action", [])), action):
            continue
        if not conditions_match(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY
        if statement.get("Effect") == "Allow":
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


__all__ = [
    "Decision",
    "UnsupportedCondition",
    "condition_matches",
    "conditions_match",
    "evaluate",
    "evaluate_trust",
    "lookup",
    "principal_matches",
    "statement_applies",
    "substitute",
]
