"""The MFA-enforcing moto server: `python -m mfa_bed.server --host 127.0.0.1 --port PORT`.

Serves STS and IAM as moto does, with IAM authentication on and the hooks of
mfa_bed.patches, plus an admin API under /stsmfa-bed/ (JSON, no AWS signature)
that tests use to set up users and look at or change the bed's state:

  POST /stsmfa-bed/create-user   {"name", "policy", "mfa", "account"} -> user with keys, serial, seed
  POST /stsmfa-bed/bulk-users    {"prefix", "count", "account", "key"}: that many users at once
  POST /stsmfa-bed/user-state    {"user", "account", "password", "password_last_used_days",
                                  "key_age_days", "hardware_mfa"}: what an audit reads (simulate.py)
  POST /stsmfa-bed/create-role   {"name", "trust_policy", "permission_policy", "account",
                                  "max_session_duration"} -> {"arn", "name", "account"}
  POST /stsmfa-bed/reset         fresh state (as POST /moto-api/reset; auth stays on)
  GET  /stsmfa-bed/stats         GetSessionToken / AssumeRole successes and failures per caller, IAM calls per action
  POST /stsmfa-bed/expire        {"access_key_id"}: that session (user or role) is expired
  POST /stsmfa-bed/age-session   {"access_key_id", "seconds"}: MFA time moved back
  GET  /stsmfa-bed/session?access_key_id=...   -> session info (role info too) or null
  GET  /stsmfa-bed/mfa-devices?user=NAME       -> [{"serial", "enabled"}]
  GET  /stsmfa-bed/virtual-devices             -> [serial, ...]
  GET  /stsmfa-bed/held          -> actions whose request the delay hook holds now
  GET  /stsmfa-bed/access-keys?user=NAME       -> [access key id, ...]
  POST /stsmfa-bed/delay         {"action", "seconds", "drop"}: the next request for that
                                 action waits `seconds` first; with drop, it is then
                                 answered 503 without being carried out (a client killed
                                 meanwhile never sees it done: the interrupted rotate test)
  POST /stsmfa-bed/create-users {"prefix", "count", "tags"}: plain users PREFIX0000..
                               (no key, password or device), in one request (admin_iam.py)
  POST /stsmfa-bed/clock-skew  {"access_key_id", "seconds"}: replies to requests signed
                               with that key carry a `Date` header that many seconds off
                               (0 puts it right again)

With --port 0 the OS picks the port. Once listening, the server prints one line
`mfa_bed listening on http://HOST:PORT` on stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import urllib.parse
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Any

# Before moto is imported: IAM authentication from the first request on.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto import settings  # noqa: E402
from moto.moto_api import _internal as moto_api_internal  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from . import admin_iam, patches, simulate  # noqa: E402
from .patches import STATE, iam_backend  # noqa: E402
from .otp import code_for_step, step_at  # noqa: E402

ADMIN_PREFIX = "/stsmfa-bed/"
REGION = "us-east-1"


# Seconds to add to the `Date` header of replies to requests signed with a
# key: a client whose clock is off, seen from the server.
CLOCK_SKEW: dict[str, float] = {}
# The skew of the request this thread is answering (werkzeug answers each
# request on its own thread and writes `Date` after the app returns).
_REQUEST = threading.local()
_SIGNING_KEY = re.compile(r"Credential=([A-Z0-9]+)/")


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_user(
    name: str, policy: dict[str, Any] | None, mfa: bool = True, account: str = patches.ACCOUNT_ID
) -> dict[str, Any]:
    """An IAM user in `account` with an inline policy, an access key (it
    authenticates into that account) and, if mfa, an enabled virtual device
    `mfa/NAME`. The device is enabled with the codes of the two previous steps,
    so the current code is still unused."""
    if not re.fullmatch(r"[0-9]{12}", account):
        raise AdminError(400, f"account must be 12 digits, not {account!r}")
    backend = iam_backend(account)
    with STATE.lock:
        if name in backend.users:
            raise AdminError(409, f"User {name} already exists")
        user = backend.create_user(region_name=REGION, user_name=name)
        if policy is not None:
            backend.put_user_policy(name, "stsmfa-bed", json.dumps(policy))
        key = backend.create_access_key(name)
        serial = seed = None
        if mfa:
            device = backend.create_virtual_mfa_device(name, "/")
            serial, seed = device.serial_number, device.base32_string_seed
            now = step_at()
            code1, code2 = code_for_step(seed, now - 2), code_for_step(seed, now - 1)
            if not patches.spend_consecutive(device, code1, code2, now_step=now):
                raise AdminError(500, "could not enable the MFA device")
            patches._orig_enable_mfa_device(backend, name, serial, code1, code2)
    return {
        "name": name,
        "arn": user.arn,
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key,
        "serial": serial,
        "seed": seed,
    }


def create_role(
    name: str,
    trust_policy: dict[str, Any],
    permission_policy: dict[str, Any] | None = None,
    account: str = patches.ACCOUNT_ID,
    max_session_duration: int = 3600,
) -> dict[str, Any]:
    """A role in `account` (any 12-digit id: moto keeps one IAM per account) with a
    trust policy and, optionally, an inline permission policy."""
    if not re.fullmatch(r"[0-9]{12}", account):
        raise AdminError(400, f"account must be 12 digits, not {account!r}")
    if not isinstance(trust_policy, dict):
        raise AdminError(400, "trust_policy (a policy document) is required")
    if not 3600 <= max_session_duration <= 43200:
        raise AdminError(400, "max_session_duration must be 3600..43200 (as IAM requires)")
    backend = iam_backend(account)
    with STATE.lock:
        if any(role.name == name for role in backend.get_roles()):
            raise AdminError(409, f"Role {name} already exists in {account}")
        role = backend.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust_policy),
            path="/",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration=str(max_session_duration),
        )
        if permission_policy is not None:
            backend.put_role_policy(name, "stsmfa-bed", json.dumps(permission_policy))
    return {"arn": role.arn, "name": role.name, "account": account}


def mfa_devices(user_name: str) -> list[dict[str, Any]]:
    """The user's enabled devices, and unassigned virtual devices named after them."""
    backend = iam_backend()
    user = backend.users.get(user_name)
    if user is None:
        raise AdminError(404, f"no user {user_name}")
    out = [{"serial": s, "enabled": True} for s in user.mfa_devices]
    for serial, device in backend.virtual_mfa_devices.items():
        if device.user is None and serial.endswith(f"/{user_name}") and ":mfa/" in serial:
            out.append({"serial": serial, "enabled": False})
    return out


def _session(body: dict[str, Any]) -> patches.Session:
    session = STATE.sessions.get(str(body.get("access_key_id", "")))
    if session is None:
        raise AdminError(404, "no such session")
    return session


def handle_admin(request: Request) -> Any:
    route = request.path[len(ADMIN_PREFIX) :].strip("/")
    method = request.method
    body = (request.get_json(silent=True) or {}) if method == "POST" else {}

    if (method, route) == ("GET", "stats"):
        return STATE.stats()
    if (method, route) == ("POST", "reset"):
        moto_api_internal.moto_api_backend.reset()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        with _DELAYS_LOCK:
            _DELAYS.clear()
        CLOCK_SKEW.clear()
        return {"reset": True}
    if (method, route) == ("POST", "create-user"):
        if not body.get("name"):
            raise AdminError(400, "name is required")
        return create_user(
            str(body["name"]),
            body.get("policy"),
            bool(body.get("mfa", True)),
            str(body.get("account") or patches.ACCOUNT_ID),
        )
    if (method, route) == ("POST", "bulk-users"):
        return simulate.bulk_users(
            str(body.get("prefix") or "user"),
            int(body.get("count") or 0),
            str(body.get("account") or patches.ACCOUNT_ID),
            bool(body.get("key", True)),
        )
    if (method, route) == ("POST", "user-state"):
        try:
            return simulate.user_state(body)
        except KeyError as exc:
            raise AdminError(404, str(exc.args[0])) from None
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
    if (method, route) == ("POST", "create-role"):
        if not body.get("name"):
            raise AdminError(400, "name is required")
        try:
            max_duration = int(body.get("max_session_duration") or 3600)
        except (TypeError, ValueError):
            raise AdminError(400, "max_session_duration must be an integer") from None
        return create_role(
            str(body["name"]),
            body.get("trust_policy"),
            body.get("permission_policy"),
            str(body.get("account") or patches.ACCOUNT_ID),
            max_duration,
        )
    if (method, route) == ("POST", "expire"):
        with STATE.lock:
            session = _session(body)
            session.expiration = min(session.expiration, time.time() - 1)
            return session.info()
    if (method, route) == ("POST", "age-session"):
        with STATE.lock:
            session = _session(body)
            if session.mfa_auth_time is None:
                raise AdminError(400, "not an MFA session")
            session.mfa_auth_time -= float(body.get("seconds", 0))
            return session.info()
    if (method, route) == ("POST", "clock-skew"):
        key = str(body.get("access_key_id") or "")
        if not key:
            raise AdminError(400, "access_key_id is required")
        try:
            seconds = float(body.get("seconds", 0))
        except (TypeError, ValueError):
            raise AdminError(400, "seconds must be a number") from None
        if seconds:
            CLOCK_SKEW[key] = seconds
        else:
            CLOCK_SKEW.pop(key, None)
        return {"access_key_id": key, "seconds": seconds}
    if (method, route) == ("GET", "session"):
        session = STATE.sessions.get(request.args.get("access_key_id", ""))
        return session.info() if session else None
    if (method, route) == ("GET", "mfa-devices"):
        return mfa_devices(request.args.get("user", ""))
    if (method, route) == ("GET", "virtual-devices"):
        return sorted(iam_backend().virtual_mfa_devices)
    if (method, route) == ("GET", "access-keys"):
        user = iam_backend().users.get(request.args.get("user", ""))
        if user is None:
            raise AdminError(404, "no such user")
        return [k.access_key_id for k in user.access_keys]
    if (method, route) == ("POST", "delay"):
        if not body.get("action"):
            raise AdminError(400, "action is required")
        with _DELAYS_LOCK:
            _DELAYS[str(body["action"])] = (float(body.get("seconds", 0)), bool(body.get("drop", False)))
        return {"delayed": str(body["action"])}
    if (method, route) == ("GET", "held"):
        with _DELAYS_LOCK:
            return list(_HELD)
    if (method, route) == ("POST", "create-users"):  # admin_iam.py: many plain users at once
        return admin_iam.create_users(body["prefix"], int(body["count"]), body.get("tags"))
    raise AdminError(404, f"no admin route {method} /stsmfa-bed/{route}")


# One-shot delays set through /stsmfa-bed/delay: action -> (seconds, drop).
_DELAYS: dict[str, tuple[float, bool]] = {}
_DELAYS_LOCK = threading.Lock()
# Actions whose request is being held right now, for tests to wait on.
_HELD: list[str] = []


def _delayed(environ: dict[str, Any]) -> bool:
    """Applies a pending delay to this request; True when it is to be dropped.
    The body is read and put back, for moto to read again."""
    with _DELAYS_LOCK:
        if not _DELAYS:
            return False
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    form = urllib.parse.parse_qs(body.decode(errors="replace"))
    action = (form.get("Action") or query.get("Action") or [""])[0]
    with _DELAYS_LOCK:
        planned = _DELAYS.pop(action, None)
    if planned is None:
        return False
    seconds, drop = planned
    with _DELAYS_LOCK:
        _HELD.append(action)
    try:
        time.sleep(seconds)
    finally:
        with _DELAYS_LOCK:
            _HELD.remove(action)
    return drop


class BedApp:
    """Admin routes first; every other request goes to moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith(ADMIN_PREFIX):
            if _delayed(environ):
                response = Response(
                    "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
                    "<Message>dropped by the bed's delay hook</Message></Error>"
                    "<RequestId>stsmfa-bed-delay</RequestId></ErrorResponse>",
                    status=503,
                    mimetype="text/xml",
                )
                return response(environ, start_response)
            signed = _SIGNING_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
            _REQUEST.skew = CLOCK_SKEW.get(signed.group(1), 0.0) if signed else 0.0
            return self.moto_app(environ, start_response)
        _REQUEST.skew = 0.0
        request = Request(environ)
        try:
            payload, status = handle_admin(request), 200
        except AdminError as exc:
            payload, status = {"error": str(exc)}, exc.status
        except Exception as exc:  # report moto errors (e.g. bad policy) to the test
            payload, status = {"error": f"{type(exc).__name__}: {exc}"}, 500
        response = Response(json.dumps(payload), status=status, mimetype="application/json")
        return response(environ, start_response)


class BedRequestHandler(MotoRequestHandler):
    """moto's handler, with the `Date` header of a skewed key's replies moved."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is None:
            timestamp = time.time() + getattr(_REQUEST, "skew", 0.0)
        return super().date_time_string(timestamp)


def build_app() -> BedApp:
    patches.apply()
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    return BedApp(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mfa_bed.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 lets the OS choose")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    server = make_server(
        args.host, args.port, build_app(), threaded=True, request_handler=BedRequestHandler
    )
    port = server.socket.getsockname()[1]
    # moto builds some URLs from MOTO_PORT.
    os.environ.setdefault("MOTO_PORT", str(port))

    def stop(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"mfa_bed listening on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
