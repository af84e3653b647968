"""An STS/IAM test bed that enforces MFA like AWS: a patched moto server plus a client.

    from mfa_bed import Bed, User, totp, policies

    bed = Bed.start()
    alice = bed.create_user("alice", policies.deny_all_except_listed_if_no_mfa())
    code = totp(alice.seed)
    admin = bed.create_role("Admin", policies.trust_user(alice.arn), account="444455556666")
    ...
    bed.stop()

This module does not import moto: only the server process does (see server.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import policies
from .otp import totp

__all__ = ["Bed", "BedError", "Role", "User", "free_port", "policies", "totp"]

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class BedError(RuntimeError):
    """The bed could not start, or an admin call failed."""


@dataclass
class User:
    name: str
    arn: str
    access_key_id: str
    secret_access_key: str
    serial: str | None
    seed: str | None


@dataclass
class Role:
    arn: str
    name: str
    account: str


class Bed:
    """A running bed server (a child process of this interpreter)."""

    def __init__(self, endpoint: str, process: subprocess.Popen | None = None, log_path: str | None = None):
        self.endpoint = endpoint
        self.process = process
        # The server's stderr, for diagnosing a failing test.
        self.log_path = log_path

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def start(cls, port: int | None = None, timeout: float = 30.0) -> "Bed":
        """Launch `python -m mfa_bed.server` and wait until /moto-api/ answers 200.

        Without a port the server binds port 0 and reports the one the OS chose,
        so parallel beds never race for a port.
        """
        log = tempfile.NamedTemporaryFile(prefix="mfa-bed-", suffix=".log", delete=False)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        env.pop("AWS_CA_BUNDLE", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "mfa_bed.server", "--host", "127.0.0.1", "--port", str(port or 0)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        log.close()

        # Read the "listening on URL" line without blocking past the deadline.
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = found[0].strip() if found else ""
        if not line.startswith("mfa_bed listening on "):
            process.kill()
            process.wait()
            raise BedError(f"bed did not start: {_tail(log.name)}")
        # Keep draining stdout so the server can never block on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()

        bed = cls(line.rsplit(" ", 1)[1], process, log.name)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(bed.endpoint + "/moto-api/", timeout=2) as r:
                    if r.status == 200:
                        return bed
            except (urllib.error.URLError, OSError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                bed.stop()
                raise BedError(f"bed not ready at {bed.endpoint}: {_tail(log.name)}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Bed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    # ------------------------------------------------------------------ admin API

    def _call(self, method: str, route: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = f"{self.endpoint}/stsmfa-bed/{route}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise BedError(f"{method} {route}: HTTP {exc.code}: {detail}") from None

    def reset(self) -> None:
        """Fresh state: no users, sessions or statistics. IAM auth stays on."""
        self._call("POST", "reset", {})

    def create_user(
        self, name: str, policy: dict[str, Any] | None, mfa: bool = True, account: str = "123456789012"
    ) -> User:
        """A user in `account` (another account too: its keys authenticate there)."""
        body = {"name": name, "policy": policy, "mfa": mfa, "account": account}
        return User(**self._call("POST", "create-user", body))

    def bulk_users(self, prefix: str, count: int, account: str = "123456789012", key: bool = True) -> None:
        """`count` users PREFIX0.. with no policy and no MFA (an access key each unless key=False)."""
        self._call("POST", "bulk-users", {"prefix": prefix, "count": count, "account": account, "key": key})

    def user_state(self, user: str, account: str = "123456789012", **state: Any) -> dict[str, Any]:
        """Set what an audit reads: password="...", password_last_used_days=N,
        key_age_days=N (keys created and last used N days ago), hardware_mfa=SERIAL."""
        return self._call("POST", "user-state", {"user": user, "account": account, **state})

    def create_role(
        self,
        name: str,
        trust_policy: dict[str, Any],
        permission_policy: dict[str, Any] | None = None,
        account: str = "123456789012",
        max_session_duration: int = 3600,
    ) -> Role:
        """A role in `account` (another account too: 444455556666) trusting as
        `trust_policy` says (see policies.trust*), with an optional inline policy."""
        body = {
            "name": name,
            "trust_policy": trust_policy,
            "permission_policy": permission_policy,
            "account": account,
            "max_session_duration": max_session_duration,
        }
        return Role(**self._call("POST", "create-role", body))

    def stats(self) -> dict[str, dict[str, int]]:
        """Successes and failures per caller (user name; a role session's assumed-role
        ARN): get_session_token[_failed], assume_role[_failed]."""
        return self._call("GET", "stats")

    def expire_session(self, access_key_id: str) -> None:
        self._call("POST", "expire", {"access_key_id": access_key_id})

    def age_session(self, access_key_id: str, seconds: float) -> dict[str, Any]:
        """Move an MFA session's MFA time `seconds` into the past (aws:MultiFactorAuthAge).

        Works for role sessions too; sessions assumed earlier keep their own time."""
        return self._call("POST", "age-session", {"access_key_id": access_key_id, "seconds": seconds})

    def session_info(self, access_key_id: str) -> dict[str, Any] | None:
        """{"user", "mfa", "expiration" (unix s), "issued", "mfa_auth_time"} or None;
        role sessions add "account", "role", "role_arn", "session_name", "arn" (the
        assumed-role ARN) and "assumed_by" (the caller's ARN); "user" is then the user
        at the start of the chain."""
        return self._call("GET", "session", query={"access_key_id": access_key_id})

    def mfa_devices(self, user_name: str) -> list[dict[str, Any]]:
        return self._call("GET", "mfa-devices", query={"user": user_name})

    def virtual_devices(self) -> list[str]:
        return self._call("GET", "virtual-devices")

    def delay(self, action: str, seconds: float, drop: bool = False) -> None:
        """The next `action` request (e.g. DeleteAccessKey) waits `seconds`; with
        drop it is then answered 503 and never carried out. One-shot."""
        self._call("POST", "delay", {"action": action, "seconds": seconds, "drop": drop})

    def held(self) -> list[str]:
        """The actions whose request the delay hook is holding right now."""
        return self._call("GET", "held")

    def access_keys(self, user_name: str) -> list[str]:
        """The IDs of the user's access keys, as IAM has them now."""
        return self._call("GET", "access-keys", query={"user": user_name})

    def create_users(self, prefix: str, count: int, tags: list[dict[str, str]] | None = None) -> list[str]:
        """`count` plain users PREFIX0000.. (no keys, password or device), in one request."""
        return self._call("POST", "create-users", {"prefix": prefix, "count": count, "tags": tags})

    def set_clock_skew(self, access_key_id: str, seconds: float) -> None:
        """Replies to requests signed with this key get a `Date` header `seconds` off
        (positive: the server is ahead, so the client's clock looks behind); 0 undoes it."""
        self._call("POST", "clock-skew", {"access_key_id": access_key_id, "seconds": seconds})

    # ------------------------------------------------------------------ helpers

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment variables that point an AWS CLI/SDK at this bed, hermetically."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(extra)
        return env


def _tail(path: str, limit: int = 3000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def free_port() -> int:
    """A port that was free a moment ago (prefer Bed.start() without a port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
