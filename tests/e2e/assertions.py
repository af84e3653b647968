"""Checks shared by the e2e tests: stsmfa's errors in the SPEC's form (one
`stsmfa: error:` line, then `hint:` lines, exit 1, nothing on stdout), the
sessions it hands out, and that a failure cached nothing.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any, Iterable

from harness import CREDENTIAL_PROCESS_KEYS, HOUR, parse_rfc3339_z


def assert_error(cp: subprocess.CompletedProcess, *needles: str, code: int | Iterable[int] = 1,
                 hint: bool = False) -> str:
    """stsmfa failed the SPEC way: exit `code` (or one of several), nothing on
    stdout, `stsmfa: error:` as the first line of stderr when the exit is 1, and
    every needle (case-insensitive) somewhere in stderr. Returns stderr.

    hint=True: also exactly one `stsmfa: error:` line and at least one `hint:`
    line after it (the whole SPEC form)."""
    codes = {code} if isinstance(code, int) else set(code)
    assert cp.returncode in codes, f"exit {cp.returncode}, wanted {codes}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert cp.stdout == "", f"an error printed on stdout: {cp.stdout!r}"
    first = cp.stderr.lstrip().splitlines()[0] if cp.stderr.strip() else ""
    if cp.returncode == 1:
        assert first.startswith("stsmfa: error:"), f"first stderr line: {first!r}\n{cp.stderr}"
    if hint:
        assert len(error_lines(cp.stderr)) == 1, f"not exactly one error line:\n{cp.stderr}"
        assert hint_lines(cp.stderr), f"no hint: line:\n{cp.stderr}"
    low = cp.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"{n!r} not in stderr:\n{cp.stderr}"
    return cp.stderr


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("stsmfa: error:")]


def hint_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("hint:")]


def assert_session(cred: dict, user, hours: float, slack: float = 120) -> None:
    """A credential_process answer for an MFA session of `user` lasting `hours`."""
    assert set(cred) == CREDENTIAL_PROCESS_KEYS, cred.keys()
    assert cred["Version"] == 1 and isinstance(cred["Version"], int)
    assert cred["AccessKeyId"].startswith("ASIA"), cred["AccessKeyId"]
    assert cred["AccessKeyId"] != user.access_key_id
    assert cred["SecretAccessKey"] and cred["SecretAccessKey"] != user.secret_access_key
    assert cred["SessionToken"]
    left = parse_rfc3339_z(cred["Expiration"]) - time.time()
    assert abs(left - hours * HOUR) < slack, f"expires in {left:.0f}s, wanted {hours}h"


def assert_nothing_cached(home: Any, user: Any, env=None) -> None:
    """No session of `user` is in the store (after a failure)."""
    assert home.status_for(user, env=env) == [], "a session was cached after a failure"
