"""Programs that stand in for others, as the scripts in fake_bin/: MFA code
sources (one that logs every call, one that behaves like an authenticator app,
one that hangs), fake code prompt programs (zenity, kdialog, osascript, ykman)
that log how stsmfa ran them, and small probes for `exec`.

The Python ones need only the stdlib and share one TOTP module,
mfa_bed/otp.py; they run with the venv's python or /usr/bin/python3.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

FAKE_BIN = Path(__file__).resolve().parent / "fake_bin"
PROMPT_PROGRAMS = ("zenity", "kdialog", "osascript", "ykman")


def mfa_code_argv(seed_file: Path, state_file: Path, log: Path | None, mode: str = "totp") -> list[str]:
    """fake_bin/mfa-code for a device: a fresh valid code (mode totp), a wrong
    one (wrong), `fixed:CODE`, or a failure (fail); each call appends a line to
    `log`. Run with this Python, as the AWS config's mfa_process or directly."""
    return [os.path.abspath(sys.executable), str(FAKE_BIN / "mfa-code"), str(seed_file), str(state_file),
            str(log) if log else "-", mode]


def authenticator_command(home: Any, user: Any, log: Path) -> str:
    """An mfa_process that behaves like an authenticator app: it prints the
    code of the current 30-second step, whatever was handed out before; each
    call appends "CODE STEP" to `log`."""
    return shlex.join([str(FAKE_BIN / "authenticator"), str(home._seed_file(user)), str(log)])


def hanging_command(log: Path) -> str:
    """An mfa_process that notes it started, then never answers (a person who
    walked away from the prompt)."""
    return shlex.join([str(FAKE_BIN / "mfa-code-hangs"), str(log)])


def fake_program(directory: Path, name: str, seed_file: Path | None, log: Path,
                 output: str = "{code}", exit_code: int = 0) -> dict[str, str]:
    """Puts a fake `name` (zenity, kdialog, osascript, ykman) in `directory`,
    the only program there unless more are added, and returns the environment
    it needs: it appends its argv (JSON), whether it had a terminal and DISPLAY
    to `log`, then prints `output` with {code} replaced by the current TOTP of
    `seed_file`, and exits `exit_code`."""
    assert name in PROMPT_PROGRAMS, name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).symlink_to(FAKE_BIN / name)
    env = {"FAKE_PROMPT_LOG": str(log), "FAKE_PROMPT_OUTPUT": output, "FAKE_PROMPT_EXIT": str(exit_code)}
    if seed_file:
        env["FAKE_PROMPT_SEED_FILE"] = str(seed_file)
    return env


def read_json_lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
