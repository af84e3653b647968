"""Extends moto so that STS and IAM enforce MFA the way AWS does.

Stock moto never checks MFA codes, hands every caller the same fixed session keys
and ignores policy conditions. `apply()` monkeypatches moto (pinned in
requirements.txt: these hooks follow its internals) so that:

- GetSessionToken checks TokenCode as TOTP against the device seed, rejects reused
  codes, and mints unique ASIA... credentials tied to the calling user, with an MFA
  flag and MFA time;
- requests signed with those credentials authenticate (ExpiredToken once expired)
  and are authorised with the user's policies, conditions included, using
  aws:MultiFactorAuthPresent / aws:MultiFactorAuthAge in the request context;
- AssumeRole evaluates the role's trust policy (principal, sts:ExternalId, the MFA
  keys of the calling session or of SerialNumber/TokenCode) and the caller's
  identity policies, enforces the role-chaining and MaxSessionDuration limits, and
  mints unique role sessions in the role's account that carry the caller's MFA
  context; calls with them are authorised with the role's policies;
- EnableMFADevice checks its two codes; ListMFADevices / GetUser default to the
  caller; ResyncMFADevice exists.

Bed state (sessions, statistics) lives in STATE and is cleared by moto's reset.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import moto
from botocore.credentials import Credentials
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import InvalidClientTokenIdError, _RESTError
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.iam import access_control
from moto.iam.access_control import (
    CreateAccessKeyFailure,
    IAMPolicy,
    IAMRequestBase,
    IAMUserAccessKey,
)
from moto.iam.exceptions import (
    DeleteConflictException,
    EntityAlreadyExists,
    IAMException,
    NotFoundException,
)
from moto.iam.models import IAMBackend, Role, User, iam_backends
from moto.iam.responses import IamResponse
from moto.moto_api._internal.models import MotoAPIBackend
from moto.sts.responses import TokenResponse

from . import evaluator
from .otp import code_for_step, step_at

PINNED_MOTO = "5.2.5"
PARTITION = "aws"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID

MIN_DURATION = 900
MAX_DURATION = 129600
DEFAULT_DURATION = 43200
# AssumeRole: the API's bounds, its default and the cap for calls with session keys.
ROLE_MAX_DURATION = 43200
ROLE_DEFAULT_DURATION = 3600
ROLE_CHAINING_LIMIT = 3600

MSG_BAD_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
MSG_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MSG_SESSION_CALLER = "Cannot call GetSessionToken with session credentials"
MSG_EXPIRED = "The security token included in the request is expired"
MSG_ROLE_CHAINING = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
    "role chaining."
)
MSG_MAX_SESSION_DURATION = (
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
)


# --------------------------------------------------------------------------- state


@dataclass
class Session:
    """A GetSessionToken session of an IAM user, or (role_arn set) a role session.

    For a role session, user_name is the IAM user at the start of the chain and
    mfa / mfa_auth_time are carried over from the credentials that assumed it.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str
    user_name: str
    mfa: bool
    mfa_auth_time: float | None
    issued: float
    expiration: float
    account: str = ACCOUNT_ID
    role_arn: str | None = None
    role_name: str | None = None
    role_id: str | None = None
    session_name: str | None = None
    assumed_by: str | None = None

    @property
    def is_role(self) -> bool:
        return self.role_arn is not None

    @property
    def arn(self) -> str:
        """The assumed-role ARN of a role session (callers' ARN in errors, GetCallerIdentity)."""
        role, name = self.role_name, self.session_name
        return f"arn:{PARTITION}:sts::{self.account}:assumed-role/{role}/{name}"

    @property
    def stats_name(self) -> str:
        """The caller's name in bed statistics: user name, or assumed-role ARN."""
        return self.arn if self.is_role else self.user_name

    def info(self) -> dict[str, Any]:
        out = {
            "user": self.user_name,
            "mfa": self.mfa,
            "expiration": int(self.expiration),
            "issued": int(self.issued),
            "mfa_auth_time": self.mfa_auth_time,
        }
        if self.is_role:
            out.update(
                account=self.account,
                role=self.role_name,
                role_arn=self.role_arn,
                session_name=self.session_name,
                arn=self.arn,
                assumed_by=self.assumed_by,
            )
        return out


class BedState:
    def __init__(self) -> None:
        # One lock for everything that checks-then-mutates, so concurrent callers
        # cannot both spend the same TOTP code.
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.sessions: dict[str, Session] = {}
            self.succeeded: Counter[str] = Counter()
            self.failed: Counter[str] = Counter()
            self.assumed: Counter[str] = Counter()
            self.assume_failed: Counter[str] = Counter()
            # Every IAM API call the bed answered, by action (e.g. "GetGroup"),
            # so tests can bound how many calls a command makes.
            self.iam_calls: Counter[str] = Counter()

    def stats(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                "get_session_token": dict(self.succeeded),
                "get_session_token_failed": dict(self.failed),
                "assume_role": dict(self.assumed),
                "assume_role_failed": dict(self.assume_failed),
                "iam_calls": dict(self.iam_calls),
            }


STATE = BedState()


def iam_backend(account: str = ACCOUNT_ID) -> IAMBackend:
    return iam_backends[account][PARTITION]


# -------------------------------------------------------------------------- errors


_original_rest_error_init = _RESTError.__init__


def _rest_error_init(self: _RESTError, error_type: str, message: str, *args: Any, **kwargs: Any) -> None:
    """Moto wraps query-protocol errors as ErrorResponse/Errors/Error (EC2's shape);
    STS and IAM answer ErrorResponse/Error, which is all the AWS SDKs for Rust, Go
    and Java look for. Without this, every error reaches them as "unknown"."""
    _original_rest_error_init(self, error_type, message, *args, **kwargs)
    from xmltodict import unparse

    error = {"Type": "Sender", "Code": error_type, "Message": message}
    body = {"ErrorResponse": {"Error": error, "RequestId": "00000000-0000-0000-0000-000000000000"}}
    self.description = unparse(body, full_document=True)


class BedError(_RESTError):
    """An AWS query-protocol error with an explicit HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code, message)
        self.code = status


class InvalidAuthenticationCode(IAMException):
    # The IAM service model gives this error HTTP 403.
    code = "InvalidAuthenticationCode"


def _validation_error(message: str) -> BedError:
    return BedError(400, "ValidationError", message)


# ------------------------------------------------------------------------ TOTP use


def _used_steps(device: Any) -> set[int]:
    # Kept on the device object, so deleting and recreating a device starts afresh.
    if not hasattr(device, "bed_used_steps"):
        device.bed_used_steps = set()
    return device.bed_used_steps


def spend_code(device: Any, code: str, now_step: int | None = None) -> bool:
    """Accept a code for the current step +-1, once per step."""
    now = step_at() if now_step is None else now_step
    used = _used_steps(device)
    for step in (now, now - 1, now + 1):
        if step not in used and code_for_step(device.base32_string_seed, step) == code:
            used.add(step)
            return True
    return False


def spend_consecutive(
    device: Any, code1: str, code2: str, now_step: int | None = None, window: int = 2
) -> bool:
    """Accept code1, code2 for steps s, s+1 with s in now-window..now."""
    now = step_at() if now_step is None else now_step
    seed = device.base32_string_seed
    for step in range(now - window, now + 1):
        if code_for_step(seed, step) == code1 and code_for_step(seed, step + 1) == code2:
            _used_steps(device).update({step, step + 1})
            return True
    return False


# ----------------------------------------------------------------- authentication


def _session_for(access_key_id: str | None) -> Session | None:
    return STATE.sessions.get(access_key_id or "")


def _check_session_token(session: Session, headers: Any) -> None:
    if headers.get("X-Amz-Security-Token") != session.session_token:
        raise CreateAccessKeyFailure(reason="InvalidToken")


def _check_not_expired(session: Session) -> None:
    if time.time() >= session.expiration:
        raise BedError(403, "ExpiredToken", MSG_EXPIRED)


class SessionAccessKey(IAMUserAccessKey):
    """A GetSessionToken credential: authorised with its user's policies."""

    def __init__(self, session: Session, headers: Any):
        self.account_id = session.account
        self.partition = PARTITION
        self.session = session
        self._owner_user_name = session.user_name
        self._access_key_id = session.access_key_id
        self._secret_access_key = session.secret_access_key
        _check_session_token(session, headers)
        if session.user_name not in self.backend.users:
            raise CreateAccessKeyFailure(reason="InvalidId")
        _check_not_expired(session)

    def create_credentials(self) -> Credentials:
        return Credentials(
            self._access_key_id, self._secret_access_key, self.session.session_token
        )


def find_role(role_arn: str) -> Role | None:
    """The role an ARN names, in the account the ARN names."""
    match = re.fullmatch(r"arn:aws:iam::([0-9]{12}):role/(?:[^/]+/)*[^/]+", role_arn or "")
    if match is None:
        return None
    try:
        return iam_backend(match.group(1)).get_role_by_arn(role_arn)
    except NotFoundException:
        return None


class RoleSessionAccessKey:
    """An AssumeRole credential: lives in the role's account and is authorised with
    the role's policies (none once the role is deleted)."""

    def __init__(self, session: Session, headers: Any):
        self.account_id = session.account
        self.partition = PARTITION
        self.session = session
        self._access_key_id = session.access_key_id
        self._secret_access_key = session.secret_access_key
        _check_session_token(session, headers)
        _check_not_expired(session)

    @property
    def backend(self) -> IAMBackend:
        return iam_backend(self.account_id)

    @property
    def arn(self) -> str:
        return self.session.arn

    def role(self) -> Role | None:
        return find_role(self.session.role_arn or "")

    def create_credentials(self) -> Credentials:
        return Credentials(
            self._access_key_id, self._secret_access_key, self.session.session_token
        )

    def collect_policies(self) -> list[Any]:
        role = self.role()
        if role is None:
            return []
        return list(role.policies.values()) + list(role.managed_policies.values())


_orig_create_access_key = access_control.create_access_key


def _create_access_key(
    account_id: str, partition: str, access_key_id: str, headers: dict[str, str]
) -> Any:
    session = _session_for(access_key_id)
    if session is not None and session.is_role:
        return RoleSessionAccessKey(session, headers)
    if session is not None:
        return SessionAccessKey(session, headers)
    return _orig_create_access_key(account_id, partition, access_key_id, headers)


_orig_get_current_account = BaseResponse.get_current_account


def _get_current_account(self: BaseResponse) -> str:
    # moto routes a request by its access key's account; the bed's sessions are not
    # moto access keys, so name their account here (a role session: the role's).
    session = _session_for(self.get_access_key())
    if session is not None:
        return session.account
    return _orig_get_current_account(self)


# ------------------------------------------------------------------ authorisation

# Calls that no identity policy can deny on AWS.
ALWAYS_ALLOWED = {"sts:getcalleridentity", "sts:getsessiontoken"}


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@dataclass
class Caller:
    """Who signed a request: an IAM user (long-term keys or one of its
    GetSessionToken sessions) or a role session."""

    key: Any  # the access key object, for its policies
    arn: str  # user ARN or assumed-role ARN, as errors name the caller
    account: str
    # What a trust policy may name to mean this caller.
    principal_arns: tuple[str, ...]
    user: User | None
    role: Role | None
    session: Session | None

    @property
    def stats_name(self) -> str:
        if self.session is not None:
            return self.session.stats_name
        return self.user.name  # type: ignore[union-attr]

    @property
    def origin_user(self) -> str:
        """The IAM user at the start of this caller's chain of sessions."""
        if self.session is not None:
            return self.session.user_name
        return self.user.name  # type: ignore[union-attr]

    def policies(self) -> list[dict[str, Any]]:
        return [IAMPolicy(p)._policy_json for p in self.key.collect_policies()]

    def context(
        self, now: float | None = None, mfa: bool | None = None, mfa_auth_time: float | None = None
    ) -> dict[str, str]:
        """Global condition keys of this caller's request.

        Long-term keys carry no MFA keys at all (as on AWS); sessions say whether MFA
        was used, and MFA sessions how long ago the code was checked. `mfa` given
        (long-term keys with SerialNumber/TokenCode in AssumeRole) overrides that.
        """
        now = time.time() if now is None else now
        session = self.session
        ctx = {
            "aws:PrincipalArn": self.principal_arns[0],
            "aws:PrincipalAccount": self.account,
            "aws:CurrentTime": _iso(now),
            "aws:EpochTime": str(int(now)),
            "aws:SecureTransport": "false",
        }
        if session is not None and session.is_role:
            ctx["aws:userid"] = f"{session.role_id}:{session.session_name}"
            ctx["aws:PrincipalType"] = "AssumedRole"
        elif self.user is not None:
            ctx["aws:username"] = self.user.name
            ctx["aws:userid"] = self.user.id
            ctx["aws:PrincipalType"] = "User"
        if mfa is None and session is not None:
            mfa, mfa_auth_time = session.mfa, session.mfa_auth_time
        if session is not None:
            ctx["aws:TokenIssueTime"] = _iso(session.issued)
        if mfa is not None:
            ctx["aws:MultiFactorAuthPresent"] = "true" if mfa else "false"
            if mfa and mfa_auth_time is not None:
                ctx["aws:MultiFactorAuthAge"] = str(max(0, int(now - mfa_auth_time)))
        return ctx


def caller_of(key: Any) -> Caller | None:
    """The caller behind an authenticated access key; None for key kinds the bed
    leaves to moto (AssumeRoleWithWebIdentity/SAML sessions)."""
    if isinstance(key, RoleSessionAccessKey):
        session = key.session
        role = key.role()
        return Caller(
            key=key,
            arn=session.arn,
            account=session.account,
            principal_arns=(session.role_arn or "", session.arn),
            user=None,
            role=role,
            session=session,
        )
    if isinstance(key, IAMUserAccessKey):
        user = key.backend.get_user(key._owner_user_name)
        return Caller(
            key=key,
            arn=user.arn,
            account=key.account_id,
            principal_arns=(user.arn,),
            user=user,
            role=None,
            session=getattr(key, "session", None),
        )
    return None


def _identity_denied(
    caller_arn: str, action: str, resource: str, decision: evaluator.Decision
) -> BedError:
    where = f" on resource: {resource}" if resource != "*" else ""
    if decision is evaluator.Decision.EXPLICIT_DENY:
        why = " with an explicit deny in an identity-based policy"
    else:
        why = f" because no identity-based policy allows the {action} action"
    return BedError(
        403,
        "AccessDenied",
        f"User: {caller_arn} is not authorized to perform: {action}{where}{why}",
    )


def _evaluate(function: Any, *args: Any) -> evaluator.Decision:
    """An evaluator call; an operator it does not implement fails the request loudly."""
    try:
        return function(*args)
    except evaluator.UnsupportedCondition as exc:
        raise BedError(500, "InternalFailure", f"mfa_bed: {exc}") from exc


_orig_check_action_permitted = IAMRequestBase.check_action_permitted


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    action = self._action.lower()
    if action in ALWAYS_ALLOWED:
        return
    if action == "sts:assumerole":
        # Authorised by the AssumeRole handler: its request context may hold the
        # MFA of SerialNumber/TokenCode, and the trust policy has its say.
        return
    caller = caller_of(self._access_key)
    if caller is None:
        return _orig_check_action_permitted(self, resource)
    decision = _evaluate(
        evaluator.evaluate, caller.policies(), self._action, resource, caller.context()
    )
    if decision is not evaluator.Decision.ALLOW:
        raise _identity_denied(caller.arn, self._action, resource, decision)


def caller_user_name(access_key_id: str) -> str | None:
    """The IAM user signing with this key; None for role sessions and unknown keys."""
    session = _session_for(access_key_id)
    if session is not None:
        return None if session.is_role else session.user_name
    user = iam_backend().get_user_from_access_key_id(access_key_id)
    return user.name if user else None


def user_arn(name: str, account: str = ACCOUNT_ID) -> str:
    user = iam_backend(account).users.get(name)
    path = user.path if user else "/"
    return f"arn:{PARTITION}:iam::{account}:user{path}{name}"


# IAM actions whose resource is the caller's own user when UserName is omitted.
_USER_SCOPED = {
    "GetUser",
    "ListMFADevices",
    "ChangePassword",
    "ListAccessKeys",
    "CreateAccessKey",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "ListUserPolicies",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "ListSigningCertificates",
    "ListSSHPublicKeys",
    "ListServiceSpecificCredentials",
    "DeactivateMFADevice",
}

_orig_iam_determine_resource = IamResponse._determine_resource


def _iam_determine_resource(self: IamResponse) -> str:
    """The resource ARN AWS authorises an IAM call against (moto uses "*")."""
    resource = _orig_iam_determine_resource(self)
    if resource != "*":
        return resource
    action = self._get_action()
    account = self.current_account
    if action == "CreateVirtualMFADevice":
        path = self._get_param("Path") or "/"
        name = self._get_param("VirtualMFADeviceName") or ""
        return f"arn:{PARTITION}:iam::{account}:mfa{path}{name}"
    if action == "DeleteVirtualMFADevice":
        return self._get_param("SerialNumber") or "*"
    user_name = self._get_param("UserName")
    if user_name or action in _USER_SCOPED:
        name = user_name or caller_user_name(self.get_access_key())
        if name:
            return user_arn(name, account)
    return "*"


# ------------------------------------------------------------------ IAM behaviour

_orig_get_user_from_access_key_id = IAMBackend.get_user_from_access_key_id


def _get_user_from_access_key_id(self: IAMBackend, access_key_id: str) -> User | None:
    # Makes GetCallerIdentity and GetUser answer the user for its sessions too.
    session = _session_for(access_key_id)
    if session is not None:
        return None if session.is_role else self.users.get(session.user_name)
    return _orig_get_user_from_access_key_id(self, access_key_id)


_orig_enable_mfa_device = IAMBackend.enable_mfa_device


def _enable_mfa_device(
    self: IAMBackend, user_name: str, serial_number: str, code1: str, code2: str
) -> None:
    with STATE.lock:
        self.get_user(user_name)
        device = self.virtual_mfa_devices.get(serial_number)
        if device is None:
            raise NotFoundException(
                f"VirtualMFADevice with serial number {serial_number} doesn't exist."
            )
        if device.user is not None:
            raise EntityAlreadyExists("MFA Device is already in use.")
        if not spend_consecutive(device, code1 or "", code2 or ""):
            raise InvalidAuthenticationCode("Authentication code for device is not valid.")
        _orig_enable_mfa_device(self, user_name, serial_number, code1, code2)


_orig_delete_virtual_mfa_device = IAMBackend.delete_virtual_mfa_device


def _delete_virtual_mfa_device(self: IAMBackend, serial_number: str) -> None:
    device = self.virtual_mfa_devices.get(serial_number)
    if device is not None and device.user is not None:
        raise DeleteConflictException("MFA device is still in use.")
    _orig_delete_virtual_mfa_device(self, serial_number)


def _list_mfa_devices(self: IamResponse) -> ActionResult:
    user_name = self._get_param("UserName") or caller_user_name(self.get_access_key())
    devices = self.backend.list_mfa_devices(user_name)
    return ActionResult(
        {
            "MFADevices": [
                {
                    "UserName": user_name,
                    "SerialNumber": device.serial_number,
                    "EnableDate": device.enable_date,
                }
                for device in devices
            ],
            "IsTruncated": False,
        }
    )


def _resync_mfa_device(self: IamResponse) -> ActionResult:
    user = self.backend.get_user(self._get_param("UserName"))
    serial = self._get_param("SerialNumber")
    device = self.backend.virtual_mfa_devices.get(serial)
    if serial not in user.mfa_devices or device is None:
        raise NotFoundException(f"MFA device {serial} not found for user {user.name}.")
    with STATE.lock:
        ok = spend_consecutive(
            device,
            self._get_param("AuthenticationCode1") or "",
            self._get_param("AuthenticationCode2") or "",
            window=20,
        )
    if not ok:
        raise InvalidAuthenticationCode("Authentication code for device is not valid.")
    return EmptyResult()


# ------------------------------------------------------------------ GetSessionToken

_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def mint_session(
    user_name: str,
    duration: int,
    mfa: bool,
    now: float | None = None,
    mfa_auth_time: float | None = None,
    **role: Any,
) -> Session:
    """New unique credentials; `role` (account, role_arn, ...) makes a role session,
    and mfa_auth_time then carries the MFA time of the credentials that assumed it."""
    now = time.time() if now is None else now
    session = Session(
        access_key_id="ASIA" + _random(_KEY_ALPHABET, 16),
        secret_access_key=_random(_SECRET_ALPHABET, 40),
        # Real tokens are a few hundred base64 characters.
        session_token="IQoJb3JpZ2luX2VjE" + _random(_SECRET_ALPHABET, 340),
        user_name=user_name,
        mfa=mfa,
        mfa_auth_time=(now if mfa_auth_time is None else mfa_auth_time) if mfa else None,
        issued=now,
        # Whole seconds, as AWS reports Expiration.
        expiration=float(int(now) + duration),
        **role,
    )
    STATE.sessions[session.access_key_id] = session
    return session


def _raise_validation(errors: list[str]) -> None:
    """AWS's model-validation error, listing every failed constraint."""
    if errors:
        plural = "s" if len(errors) > 1 else ""
        raise _validation_error(
            f"{len(errors)} validation error{plural} detected: " + "; ".join(errors)
        )


def _duration_errors(raw: Any, default: int, maximum: int, errors: list[str]) -> int:
    if raw in (None, ""):
        return default
    try:
        duration = int(raw)
    except (TypeError, ValueError):
        errors.append(
            f"Value '{raw}' at 'durationSeconds' failed to satisfy constraint: "
            "Member must be an integer"
        )
        return default
    if duration < MIN_DURATION:
        errors.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {MIN_DURATION}"
        )
    elif duration > maximum:
        errors.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value less than or equal to {maximum}"
        )
    return duration


def _string_errors(
    name: str,
    value: Any,
    errors: list[str],
    min_len: int,
    max_len: int,
    pattern: str,
    shown: str,
    required: bool = False,
) -> None:
    """Length and pattern constraints of one string parameter (AWS's wording)."""
    if value is None:
        if required:
            errors.append(
                f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
            )
        return
    value = str(value)
    if len(value) < min_len:
        rule = f"Member must have length greater than or equal to {min_len}"
    elif len(value) > max_len:
        rule = f"Member must have length less than or equal to {max_len}"
    elif not re.fullmatch(pattern, value):
        rule = f"Member must satisfy regular expression pattern: {shown}"
    else:
        return
    errors.append(f"Value '{value}' at '{name}' failed to satisfy constraint: {rule}")


def _token_code_errors(code: Any, errors: list[str]) -> None:
    _string_errors("tokenCode", code, errors, 6, 6, r"[0-9]*", "[\\d]*")


def _check_duration(raw: Any) -> int:
    errors: list[str] = []
    duration = _duration_errors(raw, DEFAULT_DURATION, MAX_DURATION, errors)
    _raise_validation(errors)
    return duration


def _check_token_code_format(code: str) -> None:
    errors: list[str] = []
    _token_code_errors(code, errors)
    _raise_validation(errors)


def _issue(response: TokenResponse, user: User, account: str = ACCOUNT_ID) -> Session:
    duration = _check_duration(response._get_param("DurationSeconds"))
    serial = response._get_param("SerialNumber")
    code = response._get_param("TokenCode")
    if code is not None:
        _check_token_code_format(str(code))
    if not serial:
        if code:
            raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)
        return mint_session(user.name, duration, mfa=False, account=account)

    device = iam_backend(account).virtual_mfa_devices.get(serial)
    if serial not in user.mfa_devices or device is None:
        raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)
    if not code or not spend_code(device, str(code)):
        raise BedError(403, "AccessDenied", MSG_BAD_CODE)
    return mint_session(user.name, duration, mfa=True, account=account)


def _get_session_token(self: TokenResponse) -> ActionResult:
    access_key_id = self.get_access_key()
    with STATE.lock:
        session = _session_for(access_key_id)
        if session is not None:
            STATE.failed[session.stats_name] += 1
            raise BedError(403, "AccessDenied", MSG_SESSION_CALLER)
        # The long-term key's own account (moto routes a request by its key), so
        # users of every account get sessions in theirs.
        account = self.current_account
        user = iam_backend(account).get_user_from_access_key_id(access_key_id)
        if user is None:
            raise InvalidClientTokenIdError()
        try:
            minted = _issue(self, user, account)
        except Exception:
            STATE.failed[user.name] += 1
            raise
        STATE.succeeded[user.name] += 1

    return ActionResult({"Credentials": _credentials(minted)})


def _credentials(minted: Session) -> dict[str, Any]:
    """The Credentials element of a GetSessionToken or AssumeRole answer."""
    return {
        "AccessKeyId": minted.access_key_id,
        "SecretAccessKey": minted.secret_access_key,
        "SessionToken": minted.session_token,
        "Expiration": datetime.datetime.fromtimestamp(
            minted.expiration, datetime.timezone.utc
        ).replace(tzinfo=None),
    }


# ----------------------------------------------------------------------- AssumeRole


def _assume_role_params(response: TokenResponse) -> dict[str, Any]:
    """AssumeRole's parameters, checked against the STS model's constraints."""
    get = response._get_param
    errors: list[str] = []
    role_arn = get("RoleArn")
    _string_errors("roleArn", role_arn, errors, 20, 2048, r"(?s).*", "", required=True)
    session_name = get("RoleSessionName")
    _string_errors(
        "roleSessionName", session_name, errors, 2, 64, r"[\w+=,.@-]*", "[\\w+=,.@-]*",
        required=True,
    )
    duration = _duration_errors(
        get("DurationSeconds"), ROLE_DEFAULT_DURATION, ROLE_MAX_DURATION, errors
    )
    external_id = get("ExternalId")
    _string_errors(
        "externalId", external_id, errors, 2, 1224, r"[\w+=,.@:/-]*", "[\\w+=,.@:\\/-]*"
    )
    serial = get("SerialNumber")
    _string_errors("serialNumber", serial, errors, 9, 256, r"[\w+=/:,.@-]*", "[\\w+=/:,.@-]*")
    code = get("TokenCode")
    _token_code_errors(code, errors)
    _raise_validation(errors)
    return {
        "role_arn": str(role_arn),
        "session_name": str(session_name),
        "duration": duration,
        "external_id": None if external_id is None else str(external_id),
        "serial": serial or None,
        "code": None if code is None else str(code),
    }


def _assume(caller: Caller, params: dict[str, Any]) -> Session:
    """Authorise and mint one role session. Checked in this order: the role-chaining
    cap, the MFA code (spent once accepted), the caller's identity policies, the
    trust policy (a missing role is denied alike), the role's MaxSessionDuration.

    One request context serves both policies: with SerialNumber/TokenCode it says
    MFA present, age 0, as the role session will."""
    role_arn, duration = params["role_arn"], params["duration"]
    if caller.session is not None and duration > ROLE_CHAINING_LIMIT:
        raise _validation_error(MSG_ROLE_CHAINING)

    now = time.time()
    mfa: bool | None = None
    mfa_auth_time: float | None = None
    if params["serial"]:
        user = caller.user
        device = iam_backend(caller.account).virtual_mfa_devices.get(params["serial"])
        if user is None or device is None or params["serial"] not in user.mfa_devices:
            raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)
        if not params["code"] or not spend_code(device, params["code"]):
            raise BedError(403, "AccessDenied", MSG_BAD_CODE)
        mfa, mfa_auth_time = True, now
    elif params["code"]:
        raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)

    context = caller.context(now, mfa, mfa_auth_time)
    context["sts:RoleSessionName"] = params["session_name"]
    if params["external_id"] is not None:
        context["sts:ExternalId"] = params["external_id"]

    action = "sts:AssumeRole"
    decision = _evaluate(evaluator.evaluate, caller.policies(), action, role_arn, context)
    if decision is not evaluator.Decision.ALLOW:
        raise _identity_denied(caller.arn, action, role_arn, decision)

    denied = BedError(
        403,
        "AccessDenied",
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {role_arn}",
    )
    role = find_role(role_arn)
    if role is None:
        raise denied
    try:
        trust = json.loads(role.assume_role_policy_document)
    except (TypeError, ValueError):
        raise denied from None
    decision = _evaluate(
        evaluator.evaluate_trust, trust, action, caller.principal_arns, caller.account, context
    )
    if decision is not evaluator.Decision.ALLOW:
        raise denied

    if duration > int(role.max_session_duration or ROLE_DEFAULT_DURATION):
        raise _validation_error(MSG_MAX_SESSION_DURATION)

    if mfa is None and caller.session is not None:
        mfa, mfa_auth_time = caller.session.mfa, caller.session.mfa_auth_time
    return mint_session(
        caller.origin_user,
        duration,
        mfa=bool(mfa),
        now=now,
        mfa_auth_time=mfa_auth_time,
        account=role.account_id,
        role_arn=role.arn,
        role_name=role.name,
        role_id=role.id,
        session_name=params["session_name"],
        assumed_by=caller.arn,
    )


def _assume_role(self: TokenResponse) -> ActionResult:
    with STATE.lock:
        key = _create_access_key(
            self.current_account, PARTITION, self.get_access_key(), self.headers
        )
        caller = caller_of(key)
        if caller is None:
            raise InvalidClientTokenIdError()
        try:
            params = _assume_role_params(self)
            minted = _assume(caller, params)
        except Exception:
            STATE.assume_failed[caller.stats_name] += 1
            raise
        STATE.assumed[caller.stats_name] += 1

    return ActionResult(
        {
            "Credentials": _credentials(minted),
            "AssumedRoleUser": {
                "AssumedRoleId": f"{minted.role_id}:{minted.session_name}",
                "Arn": minted.arn,
            },
        }
    )


_orig_sts_determine_resource = TokenResponse._determine_resource


def _sts_determine_resource(self: TokenResponse) -> str:
    # moto's indexes RoleArn unguarded: a call without one would be a 500.
    if "AssumeRole" in self.querystring.get("Action", []) and not self.querystring.get("RoleArn"):
        return "*"
    return _orig_sts_determine_resource(self)


_orig_get_caller_identity = TokenResponse.get_caller_identity


def _get_caller_identity(self: TokenResponse) -> ActionResult:
    session = _session_for(self.get_access_key())
    if session is not None and session.is_role:
        return ActionResult(
            {
                "UserId": f"{session.role_id}:{session.session_name}",
                "Account": session.account,
                "Arn": session.arn,
            }
        )
    return _orig_get_caller_identity(self)


# ----------------------------------------------------------------------- reset hook

_orig_moto_api_reset = MotoAPIBackend.reset


_orig_iam_call_action = IamResponse.call_action


def _iam_call_action(self: IamResponse) -> Any:
    """Counts the IAM call (answered or refused) under its action name."""
    with STATE.lock:
        STATE.iam_calls[self._get_action()] += 1
    return _orig_iam_call_action(self)


def _moto_api_reset(self: MotoAPIBackend) -> None:
    _orig_moto_api_reset(self)
    STATE.reset()


# --------------------------------------------------------------------------- apply

_applied = False


def apply() -> None:
    """Install every hook; idempotent."""
    global _applied
    if _applied:
        return
    if moto.__version__ != PINNED_MOTO:
        raise RuntimeError(
            f"mfa_bed is written against moto {PINNED_MOTO}, found {moto.__version__}; "
            "install tests/e2e/requirements.txt"
        )
    _RESTError.__init__ = _rest_error_init
    access_control.create_access_key = _create_access_key
    IAMRequestBase.check_action_permitted = _check_action_permitted
    BaseResponse.get_current_account = _get_current_account
    IamResponse._determine_resource = _iam_determine_resource
    IamResponse.list_mfa_devices = _list_mfa_devices
    IamResponse.resync_mfa_device = _resync_mfa_device
    IAMBackend.get_user_from_access_key_id = _get_user_from_access_key_id
    IAMBackend.enable_mfa_device = _enable_mfa_device
    IAMBackend.delete_virtual_mfa_device = _delete_virtual_mfa_device
    TokenResponse.get_session_token = _get_session_token
    TokenResponse.assume_role = _assume_role
    TokenResponse._determine_resource = _sts_determine_resource
    TokenResponse.get_caller_identity = _get_caller_identity
    IamResponse.call_action = _iam_call_action
    MotoAPIBackend.reset = _moto_api_reset
    __import__("mfa_bed.simulate").simulate.apply()
    __import__("mfa_bed.admin_iam").admin_iam.install()
    _applied = True
