"""Checks of what stsmfa printed: the SPEC's error form (one `stsmfa: error:`
line, then `hint:` lines, exit 1, nothing on stdout).
"""

from __future__ import annotations

import subprocess
from typing import Iterable


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
