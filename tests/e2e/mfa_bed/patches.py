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
- EnableMFADevice checks its two codes; ListMFADevices / GetUser default to the
  caller; ResyncMFADevice exists.

Bed state (sessions, statistics) lives in STATE and is cleared by moto's reset.
"""

from __future__ import annotations

import datetime
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
from moto.core.responses import ActionResult, EmptyResult
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
from moto.iam.models import IAMBackend, User, iam_backends
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

MSG_BAD_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
MSG_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MSG_SESSION_CALLER = "Cannot call GetSessionToken with session credentials"
MSG_EXPIRED = "The security token included in the request is expired"


# --------------------------------------------------------------------------- state


@dataclass
class Session:
    access_key_id: str
    secret_access_key: str
    session_token: str
    user_name: str
    mfa: bool
    mfa_auth_time: float | None
    issued: float
    expiration: float

    def info(self) -> dict[str, Any]:
        return {
            "user": self.user_name,
            "mfa": self.mfa,
            "expiration": int(self.expiration),
            "issued": int(self.issued),
            "mfa_auth_time": self.mfa_auth_time,
        }


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

    def stats(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                "get_session_token": dict(self.succeeded),
                "get_session_token_failed": dict(self.failed),
            }


STATE = BedState()


def iam_backend() -> IAMBackend:
    return iam_backends[ACCOUNT_ID][PARTITION]


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


class SessionAccessKey(IAMUserAccessKey):
    """A GetSessionToken credential: authorised with its user's policies."""

    def __init__(self, session: Session, headers: Any):
        self.account_id = ACCOUNT_ID
        self.partition = PARTITION
        self.session = session
        self._owner_user_name = session.user_name
        self._access_key_id = session.access_key_id
        self._secret_access_key = session.secret_access_key
        if headers.get("X-Amz-Security-Token") != session.session_token:
            raise CreateAccessKeyFailure(reason="InvalidToken")
        if session.user_name not in self.backend.users:
            raise CreateAccessKeyFailure(reason="InvalidId")
        if time.time() >= session.expiration:
            raise BedError(403, "ExpiredToken", MSG_EXPIRED)

    def create_credentials(self) -> Credentials:
        return Credentials(
            self._access_key_id, self._secret_access_key, self.session.session_token
        )


_orig_create_access_key = access_control.create_access_key


def _create_access_key(
    account_id: str, partition: str, access_key_id: str, headers: dict[str, str]
) -> Any:
    session = _session_for(access_key_id)
    if session is not None:
        return SessionAccessKey(session, headers)
    return _orig_create_access_key(account_id, partition, access_key_id, headers)


# ------------------------------------------------------------------ authorisation

# Calls that no identity policy can deny on AWS.
ALWAYS_ALLOWED = {"sts:getcalleridentity", "sts:getsessiontoken"}


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def request_context(user: User, session: Session | None, now: float | None = None) -> dict[str, str]:
    """Global condition keys for a call by an IAM user or one of its sessions.

    Long-term keys carry no MFA keys at all (as on AWS); sessions say whether MFA
    was used, and MFA sessions how long ago the code was checked.
    """
    now = time.time() if now is None else now
    ctx = {
        "aws:username": user.name,
        "aws:userid": user.id,
        "aws:PrincipalArn": user.arn,
        "aws:PrincipalAccount": ACCOUNT_ID,
        "aws:PrincipalType": "User",
        "aws:CurrentTime": _iso(now),
        "aws:EpochTime": str(int(now)),
        "aws:SecureTransport": "false",
    }
    if session is not None:
        ctx["aws:TokenIssueTime"] = _iso(session.issued)
        ctx["aws:MultiFactorAuthPresent"] = "true" if session.mfa else "false"
        if session.mfa and session.mfa_auth_time is not None:
            ctx["aws:MultiFactorAuthAge"] = str(max(0, int(now - session.mfa_auth_time)))
    return ctx


_orig_check_action_permitted = IAMRequestBase.check_action_permitted


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    if self._action.lower() in ALWAYS_ALLOWED:
        return
    key = self._access_key
    if not isinstance(key, IAMUserAccessKey) or ":role" in resource.lower():
        # Roles and trust policies: leave moto's own logic in charge.
        return _orig_check_action_permitted(self, resource)

    user = key.backend.get_user(key._owner_user_name)
    documents = [IAMPolicy(p)._policy_json for p in key.collect_policies()]
    context = request_context(user, getattr(key, "session", None))
    try:
        decision = evaluator.evaluate(documents, self._action, resource, context)
    except evaluator.UnsupportedCondition as exc:
        raise BedError(500, "InternalFailure", f"mfa_bed: {exc}") from exc

    if decision is evaluator.Decision.ALLOW:
        return
    where = f" on resource: {resource}" if resource != "*" else ""
    if decision is evaluator.Decision.EXPLICIT_DENY:
        why = " with an explicit deny in an identity-based policy"
    else:
        why = f" because no identity-based policy allows the {self._action} action"
    raise BedError(
        403,
        "AccessDenied",
        f"User: {key.arn} is not authorized to perform: {self._action}{where}{why}",
    )


def caller_user_name(access_key_id: str) -> str | None:
    session = _session_for(access_key_id)
    if session is not None:
        return session.user_name
    user = iam_backend().get_user_from_access_key_id(access_key_id)
    return user.name if user else None


def user_arn(name: str) -> str:
    user = iam_backend().users.get(name)
    path = user.path if user else "/"
    return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user{path}{name}"


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
    if action == "CreateVirtualMFADevice":
        path = self._get_param("Path") or "/"
        name = self._get_param("VirtualMFADeviceName") or ""
        return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:mfa{path}{name}"
    if action == "DeleteVirtualMFADevice":
        return self._get_param("SerialNumber") or "*"
    user_name = self._get_param("UserName")
    if user_name or action in _USER_SCOPED:
        name = user_name or caller_user_name(self.get_access_key())
        if name:
            return user_arn(name)
    return "*"


# ------------------------------------------------------------------ IAM behaviour

_orig_get_user_from_access_key_id = IAMBackend.get_user_from_access_key_id


def _get_user_from_access_key_id(self: IAMBackend, access_key_id: str) -> User | None:
    # Makes GetCallerIdentity and GetUser answer the user for its sessions too.
    session = _session_for(access_key_id)
    if session is not None:
        return self.users.get(session.user_name)
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


def mint_session(user_name: str, duration: int, mfa: bool, now: float | None = None) -> Session:
    now = time.time() if now is None else now
    session = Session(
        access_key_id="ASIA" + _random(_KEY_ALPHABET, 16),
        secret_access_key=_random(_SECRET_ALPHABET, 40),
        # Real tokens are a few hundred base64 characters.
        session_token="IQoJb3JpZ2luX2VjE" + _random(_SECRET_ALPHABET, 340),
        user_name=user_name,
        mfa=mfa,
        mfa_auth_time=now if mfa else None,
        issued=now,
        # Whole seconds, as AWS reports Expiration.
        expiration=float(int(now) + duration),
    )
    STATE.sessions[session.access_key_id] = session
    return session


def _check_duration(raw: Any) -> int:
    if raw in (None, ""):
        return DEFAULT_DURATION
    try:
        duration = int(raw)
    except (TypeError, ValueError):
        raise _validation_error(
            f"1 validation error detected: Value '{raw}' at 'durationSeconds' "
            "failed to satisfy constraint: Member must be an integer"
        ) from None
    if duration < MIN_DURATION:
        raise _validation_error(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed "
            f"to satisfy constraint: Member must have value greater than or equal to {MIN_DURATION}"
        )
    if duration > MAX_DURATION:
        raise _validation_error(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed "
            f"to satisfy constraint: Member must have value less than or equal to {MAX_DURATION}"
        )
    return duration


def _check_token_code_format(code: str) -> None:
    if len(code) < 6:
        rule = "Member must have length greater than or equal to 6"
    elif len(code) > 6:
        rule = "Member must have length less than or equal to 6"
    elif not re.fullmatch(r"[0-9]{6}", code):
        rule = "Member must satisfy regular expression pattern: [\\d]*"
    else:
        return
    raise _validation_error(
        f"1 validation error detected: Value '{code}' at 'tokenCode' "
        f"failed to satisfy constraint: {rule}"
    )


def _issue(response: TokenResponse, user: User) -> Session:
    duration = _check_duration(response._get_param("DurationSeconds"))
    serial = response._get_param("SerialNumber")
    code = response._get_param("TokenCode")
    if code is not None:
        _check_token_code_format(str(code))
    if not serial:
        if code:
            raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)
        return mint_session(user.name, duration, mfa=False)

    device = iam_backend().virtual_mfa_devices.get(serial)
    if serial not in user.mfa_devices or device is None:
        raise BedError(403, "AccessDenied", MSG_BAD_SERIAL)
    if not code or not spend_code(device, str(code)):
        raise BedError(403, "AccessDenied", MSG_BAD_CODE)
    return mint_session(user.name, duration, mfa=True)


def _get_session_token(self: TokenResponse) -> ActionResult:
    access_key_id = self.get_access_key()
    with STATE.lock:
        session = _session_for(access_key_id)
        if session is not None:
            STATE.failed[session.user_name] += 1
            raise BedError(403, "AccessDenied", MSG_SESSION_CALLER)
        user = iam_backend().get_user_from_access_key_id(access_key_id)
        if user is None:
            raise InvalidClientTokenIdError()
        try:
            minted = _issue(self, user)
        except Exception:
            STATE.failed[user.name] += 1
            raise
        STATE.succeeded[user.name] += 1

    expiration = datetime.datetime.fromtimestamp(
        minted.expiration, datetime.timezone.utc
    ).replace(tzinfo=None)
    return ActionResult(
        {
            "Credentials": {
                "AccessKeyId": minted.access_key_id,
                "SecretAccessKey": minted.secret_access_key,
                "SessionToken": minted.session_token,
                "Expiration": expiration,
            }
        }
    )


# ----------------------------------------------------------------------- reset hook

_orig_moto_api_reset = MotoAPIBackend.reset


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
    IamResponse._determine_resource = _iam_determine_resource
    IamResponse.list_mfa_devices = _list_mfa_devices
    IamResponse.resync_mfa_device = _resync_mfa_device
    IAMBackend.get_user_from_access_key_id = _get_user_from_access_key_id
    IAMBackend.enable_mfa_device = _enable_mfa_device
    IAMBackend.delete_virtual_mfa_device = _delete_virtual_mfa_device
    TokenResponse.get_session_token = _get_session_token
    MotoAPIBackend.reset = _moto_api_reset
    _applied = True
