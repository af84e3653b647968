"""Checks of what stsmfa printed: the SPEC's error form (one `stsmfa: error:`
line, then `hint:` lines, exit 1, nothing on stdout).
"""

from __future__ import annotations

import subprocess
from typing import Any, Iterable


def assert_error(cp: subprocess.CompletedProcess, *needles: str, code: int | Iterable[int] = 1) -> str:
    """stsmfa failed the SPEC way: exit code, `stsmfa: error:` first line,
    and every needle (case-insensitive) somewhere in stderr."""
    codes = {code} if isinstance(code, int) else set(code)
    assert cp.returncode in codes, f"exit {cp.returncode}, wanted {codes}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert cp.stdout == "", f"an error printed on stdout: {cp.stdout!r}"
    first = cp.stderr.lstrip().splitlines()[0] if cp.stderr.strip() else ""
    if cp.returncode == 1:
        assert first.startswith("stsmfa: error:"), f"first stderr line: {first!r}\n{cp.stderr}"
    low = cp.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"{n!r} not in stderr:\n{cp.stderr}"
    return cp.stderr


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("stsmfa: error:")]


def hint_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("hint:")]


def assert_one_error_with_hint(cp: Any, *needles: str) -> str:
    """Exit 1, nothing on stdout, exactly one `stsmfa: error:` line (the first
    line), at least one `hint:` line, every needle (case-insensitive) in stderr."""
    assert cp.returncode == 1, f"exit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert cp.stdout == "", f"stdout: {cp.stdout!r}"
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("stsmfa: error:"), cp.stderr
    assert len(error_lines(cp.stderr)) == 1, cp.stderr
    assert hint_lines(cp.stderr), f"no hint: line:\n{cp.stderr}"
    low = cp.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"{n!r} not in stderr:\n{cp.stderr}"
    return cp.stderr
