"""The core of stsmfa's end-to-end tests: a hermetic HOME (the `home` fixture)
with AWS config files and MFA code sources that log every call
(fake_bin/mfa-code), runners for stsmfa, shells, the AWS CLI and boto3, and
the bed's call counters.

Nothing here touches the real user's ~/.aws or environment: every child
process gets an environment built from scratch.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from fake_programs import mfa_code_argv

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / "target" / "e2e-venv"
VENV_BIN = VENV / "bin"
# STSMFA_E2E_BIN points the suite at another build (e.g. target/release/stsmfa).
STSMFA_BIN = Path(os.environ.get("STSMFA_E2E_BIN") or REPO / "target" / "debug" / "stsmfa").absolute()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

HOUR = 3600

# Outer variables a child may keep: the private D-Bus session and runtime dir
# that tests/run.sh set up (Secret Service lives there).
PASS_THROUGH = ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")

CREDENTIAL_PROCESS_KEYS = {
    "Version",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
    "Expiration",
}

ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "STSMFA_PROFILE",
)


def missing(reason: str) -> None:
    """A required tool or service is absent: a failure under CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"required for the e2e suite under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def parse_rfc3339_z(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC timestamp ending in `Z`."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", text)
    assert m, f"not an RFC 3339 UTC timestamp ending in Z: {text!r}"
    import calendar

    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = float(m.group(7) or 0)
    return calendar.timegm((y, mo, d, h, mi, s)) + frac


@dataclass
class Profile:
    name: str
    user: Any  # mfa_bed.User
    log: Path | None = None


@dataclass
class Home:
    """A hermetic HOME with its own AWS config files, state dir and TMPDIR."""

    root: Path
    bed: Any
    bin: Path = STSMFA_BIN
    env: dict[str, str] = field(default_factory=dict)
    transcript: list[tuple[list[str], str, str]] = field(default_factory=list)
    profiles: dict[str, Profile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.aws_dir = self.home / ".aws"
        self.state = self.root / "state"
        self.tools = self.root / "tools"  # outside HOME: code scripts, seeds, logs
        self.tmp = self.root / "tmp"
        for d in (self.aws_dir, self.state, self.tools, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.config_path = self.aws_dir / "config"
        self.credentials_path = self.aws_dir / "credentials"
        self.config = configparser.RawConfigParser()
        self.credentials = configparser.RawConfigParser()
        self._write_files()
        path = os.pathsep.join([str(self.bin.parent), str(VENV_BIN), "/usr/bin", "/bin"])
        self.env = {
            "PATH": path,
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.tmp),
            "AWS_CONFIG_FILE": str(self.config_path),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_path),
            "AWS_ENDPOINT_URL": self.bed.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "STSMFA_STATE_DIR": str(self.state),
            "PYTHONDONTWRITEBYTECODE": "1",
            "SHELL": "/bin/sh",
        }
        for name in PASS_THROUGH:
            if name in os.environ:
                self.env[name] = os.environ[name]

    # ---------------------------------------------------------------- files

    def _write_files(self) -> None:
        with open(self.config_path, "w") as f:
            self.config.write(f)
        with open(self.credentials_path, "w") as f:
            self.credentials.write(f)

    def set_config(self, section: str, values: Mapping[str, str]) -> None:
        """Set keys of a config section (`profile NAME` or `default`)."""
        if not self.config.has_section(section):
            self.config.add_section(section)
        for k, v in values.items():
            self.config.set(section, k, str(v))
        self._write_files()

    def set_credentials(self, section: str, values: Mapping[str, str]) -> None:
        if not self.credentials.has_section(section):
            self.credentials.add_section(section)
        for k, v in values.items():
            self.credentials.set(section, k, str(v))
        self._write_files()

    @staticmethod
    def _config_section(name: str) -> str:
        return "default" if name == "default" else f"profile {name}"

    def add_source_profile(
        self,
        name: str,
        user: Any,
        mfa_serial: bool | str = True,
        extra: Mapping[str, str] | None = None,
        mfa_process: bool | str = True,
        region: str | None = "us-east-1",
    ) -> Profile:
        """SPEC's layout: keys in credentials, mfa_serial and region in config.

        mfa_process=True wires a logging TOTP source for the user (the log is
        `profile.log`); a string is used as the command as is; False leaves
        the key out.
        """
        self.set_credentials(
            name,
            {
                "aws_access_key_id": user.access_key_id,
                "aws_secret_access_key": user.secret_access_key,
            },
        )
        cfg: dict[str, str] = {}
        if mfa_serial is True:
            assert user.serial, "user has no MFA device"
            cfg["mfa_serial"] = user.serial
        elif isinstance(mfa_serial, str):
            cfg["mfa_serial"] = mfa_serial
        if region:
            cfg["region"] = region
        log = None
        if mfa_process is True and user.seed:
            log = self.tools / f"{name}.codes.log"
            cfg["mfa_process"] = self.mfa_process(user, log)
        elif isinstance(mfa_process, str):
            cfg["mfa_process"] = mfa_process
        cfg.update(extra or {})
        self.set_config(self._config_section(name), cfg)
        prof = Profile(name, user, log)
        self.profiles[name] = prof
        return prof

    def add_process_profile(
        self, name: str, source: str, extra: Mapping[str, str] | None = None,
        region: str | None = "us-east-1",
    ) -> None:
        cfg = {"credential_process": f"stsmfa credential-process {source}"}
        if region:
            cfg["region"] = region
        cfg.update(extra or {})
        self.set_config(self._config_section(name), cfg)

    # ---------------------------------------------------------- MFA codes

    def _seed_file(self, user: Any) -> Path:
        assert user.seed, f"user {user.name} has no MFA device"
        p = self.tools / f"{user.name}.seed"
        if not p.exists():
            p.write_text(user.seed)
            p.chmod(0o600)
        return p

    def _code_argv(self, user: Any, log: Path | None, mode: str) -> list[str]:
        return mfa_code_argv(self._seed_file(user), self.tools / f"{user.name}.step", log, mode)

    def mfa_process(self, user: Any, log: Path | None = None, mode: str = "totp") -> str:
        """A shell command (fake_bin/mfa-code) printing a fresh valid code for
        `user` (mode totp), a wrong one (mode wrong), `fixed:CODE`, or failing
        (mode fail); each call appends a line to `log`. A fresh code is never
        for a 30-second step already handed out for this user (a second
        session within one step gets the next step's code, which STS accepts
        and which is not "the last code sent")."""
        return " ".join(shlex.quote(a) for a in self._code_argv(user, log, mode))

    def code(self, user: Any) -> str:
        """A fresh valid code for --mfa-code / STSMFA_MFA_CODE (never a step
        already handed out for this user)."""
        out = subprocess.run(
            self._code_argv(user, None, "totp"), capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    def wrong_code(self, user: Any) -> str:
        out = subprocess.run(
            self._code_argv(user, None, "wrong"), capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    @staticmethod
    def calls(log: Path | None) -> int:
        """How many codes were asked for through that log."""
        if log is None or not log.exists():
            return 0
        return len(log.read_text().splitlines())

    # ------------------------------------------------------------- runners

    def _env(self, env: Mapping[str, str | None] | None) -> dict[str, str]:
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def _run(
        self,
        argv: list[str],
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        try:
            cp = subprocess.run(
                argv,
                env=self._env(env),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=cwd or self.root,
                start_new_session=True,  # no controlling terminal
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"timed out after {timeout}s: {argv!r}\nstderr: {exc.stderr!r}")
        self.transcript.append((argv, cp.stdout, cp.stderr))
        return cp

    def run(self, *args: str, env=None, input=None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run stsmfa with args; no terminal, stdin /dev/null unless input."""
        return self._run([str(self.bin), *args], env=env, input=input, timeout=timeout)

    def sh(self, script: str, shell: str = "bash", env=None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a script in a shell (bash, sh, zsh: `-c`; fish: `-c` too)."""
        path = shutil.which(shell, path=self.env["PATH"]) or shell
        return self._run([path, "-c", script], env=env, timeout=timeout)

    def aws(self, *args: str, profile: str | None = None, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [str(VENV_BIN / "aws"), *args, "--output", "json"]
        if profile:
            argv += ["--profile", profile]
        return self._run(argv, env=env, timeout=timeout)

    def boto3(self, code: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run Python code with boto3 importable (the test venv)."""
        return self._run([str(VENV_BIN / "python"), "-c", textwrap.dedent(code)], env=env, timeout=timeout)

    # ---------------------------------------------------------- shortcuts

    def credential_process(self, profile: str, *args: str, env=None) -> dict:
        cp = self.run("credential-process", profile, *args, env=env)
        assert cp.returncode == 0, f"credential-process {profile} failed: {cp.stderr}"
        return json.loads(cp.stdout)

    def status(self, *args: str, env=None) -> list[dict]:
        cp = self.run("status", *args, "--json", env=env)
        assert cp.returncode == 0, f"status failed: {cp.stderr}"
        data = json.loads(cp.stdout)
        assert isinstance(data, list), cp.stdout
        return data

    def status_for(self, user: Any, *args: str, env=None) -> list[dict]:
        """Status entries of this user's device only (the keyrings are shared
        by all tests of a run)."""
        return [s for s in self.status(*args, env=env) if s.get("mfa_serial") == user.serial]

    def all_output(self) -> str:
        return "\n".join(o + "\n" + e for _, o, e in self.transcript)

    def all_stderr(self) -> str:
        return "\n".join(e for _, _, e in self.transcript)


def sts_ok(bed: Any, user: Any) -> int:
    return bed.stats().get("get_session_token", {}).get(user.name, 0)


def sts_failed(bed: Any, user: Any) -> int:
    return bed.stats().get("get_session_token_failed", {}).get(user.name, 0)


def wait_until(pred, timeout: float = 10, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()
