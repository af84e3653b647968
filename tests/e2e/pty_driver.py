"""Driving a program under a pseudo-terminal, as a person at a terminal does, and
the timing of the 30-second TOTP steps that such tests line up with.

Stdlib only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import termios
import time
from typing import Mapping

from mfa_bed.otp import STEP_SECONDS


class PtyProcess:
    """Runs argv as the session leader of a new pseudo-terminal (so /dev/tty
    is that terminal), with `expect`/`send` in the style of pexpect."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: str | os.PathLike | None = None,
                 cols: int = 200, rows: int = 60):
        exe = argv[0]
        if not os.path.isabs(exe):
            found = shutil.which(exe, path=env.get("PATH"))
            assert found, f"{exe} not found on PATH"
            exe = found
        env = dict(env)
        pid, fd = pty.fork()
        if pid == 0:  # the child: a new session whose controlling terminal is the pty
            try:
                if cwd is not None:
                    os.chdir(cwd)
                os.execve(exe, [exe, *argv[1:]], env)
            except BaseException:  # noqa: BLE001
                os._exit(127)
        self.pid = pid
        self.fd = fd
        self.raw = b""
        self.pos = 0  # where the next expect starts searching in self.text
        self.eof = False
        self.status: int | None = None
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace").replace("\r\n", "\n")

    def _read(self, timeout: float) -> bool:
        if self.eof:
            return False
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the other side is closed
            if exc.errno in (errno.EIO, errno.EBADF):
                self.eof = True
                return False
            raise
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        return True

    def expect(self, pattern: str, timeout: float = 30) -> re.Match:
        """Waits for the regex `pattern` in the output after the last match."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.text, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = end - time.monotonic()
            if left <= 0 or (self.eof and not self._read(0)):
                why = "the program ended" if self.eof else f"nothing matched within {timeout}s"
                raise AssertionError(
                    f"{why}: waiting for {pattern!r}\n--- terminal output after the last match ---\n"
                    f"{self.text[self.pos:]}\n--- whole transcript ---\n{self.text}"
                )
            self._read(min(left, 0.2))

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def sendline(self, line: str) -> None:
        self.send(line + "\r")

    def alive(self) -> bool:
        return self.poll() is None

    def poll(self) -> int | None:
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def wait(self, timeout: float = 30) -> int:
        """The exit code (negative: killed by that signal). Drains the output."""
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                raise AssertionError(f"still running after {timeout}s\n{self.text}")
            self._read(0.05)
        while self._read(0.05):
            pass
        return self.status  # type: ignore[return-value]

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self.poll() is None:
            self.kill_group(signal.SIGKILL)
            try:
                self.wait(10)
            except AssertionError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


# --------------------------------------------------------------------------
# TOTP step timing


def seconds_left_in_step(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return STEP_SECONDS - (now % STEP_SECONDS)


def ensure_room_in_step(seconds: float) -> None:
    """Set-up only: wait until at least `seconds` remain in the current
    30-second step, so a test that needs two things in one step gets them."""
    left = seconds_left_in_step()
    if left < seconds:
        time.sleep(left + 0.2)
