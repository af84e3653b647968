"""More helpers for the e2e tests (concurrency, faults, everyday use, enroll):
programs under a pseudo-terminal, fake STS endpoints that fail on purpose,
MFA code sources that behave like a person or a hung dialog, fake GUI/YubiKey
programs, and private D-Bus sessions.

Stdlib only, like harness.py.
"""

from __future__ import annotations

import errno
import fcntl
import http.client
import json
import os
import pty
import re
import select
import shlex
import signal
import socket
import struct
import sys
import termios
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping

STEP = 30


# --------------------------------------------------------------------------
# A program under a pseudo-terminal (what a person at a terminal sees)


class PtyProcess:
    """Runs argv as the session leader of a new pseudo-terminal (so /dev/tty
    is that terminal), with `expect`/`send` in the style of pexpect."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: str | os.PathLike | None = None,
                 cols: int = 200, rows: int = 60):
        exe = argv[0]
        if not os.path.isabs(exe):
            import shutil

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
# TOTP timing


def seconds_left_in_step(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return STEP - (now % STEP)


def ensure_room_in_step(seconds: float) -> None:
    """Set-up only: wait until at least `seconds` remain in the current
    30-second step, so a test that needs two things in one step gets them."""
    left = seconds_left_in_step()
    if left < seconds:
        time.sleep(left + 0.2)


# --------------------------------------------------------------------------
# Code sources and fake programs (Python scripts, stdlib only)

_TOTP_PY = r'''
import base64, hashlib, hmac, struct, time
def totp(seed, offset=0):
    clean = seed.replace(" ", "").upper()
    key = base64.b32decode(clean + "=" * (-len(clean) % 8))
    step = int(time.time() // 30) + offset
    d = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = d[-1] & 0x0F
    return str((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 10 ** 6).zfill(6)
'''


def _write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{os.path.abspath(sys.executable)}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def authenticator_command(home: Any, user: Any, log: Path) -> str:
    """An mfa_process that behaves like an authenticator app: it prints the
    code of the current 30-second step, whatever was handed out before."""
    seed = home._seed_file(user)
    script = _write_script(
        home.tools / f"authenticator-{user.name}.py",
        _TOTP_PY
        + f"""
import sys, time
code = totp(open({str(seed)!r}).read().strip())
with open({str(log)!r}, "a") as f:
    f.write("%s %d\\n" % (code, int(time.time() // 30)))
print(code)
""",
    )
    return shlex.quote(str(script))


def hanging_command(log: Path) -> str:
    """An mfa_process that notes it started, then never answers (a person who
    walked away from the prompt)."""
    return f"echo started >> {shlex.quote(str(log))}; exec sleep 600"


def fake_program(directory: Path, name: str, seed_file: Path | None, log: Path,
                 output: str = "{code}", exit_code: int = 0) -> Path:
    """A fake `name` (zenity, kdialog, osascript, ykman...) in `directory`: it
    appends its argv (JSON) and whether it had a terminal to `log`, then
    prints `output` with {code} replaced by the current TOTP of `seed_file`."""
    return _write_script(
        directory / name,
        _TOTP_PY
        + f"""
import json, os, sys
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    tty = True
except OSError:
    tty = False
seed_file = {str(seed_file) if seed_file else None!r}
code = totp(open(seed_file).read().strip()) if seed_file else "000000"
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "tty": tty, "display": os.environ.get("DISPLAY")}}) + "\\n")
print({output!r}.replace("{{code}}", code))
sys.exit({exit_code})
""",
    )


def read_json_lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------
# Network peers that misbehave


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Blackhole:
    """A TCP (or Unix) listener that accepts connections and never answers."""

    def __init__(self, unix_path: str | None = None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = unix_path
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.address = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for c in self.accepted:
            c.close()
        self.sock.close()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def sts_error_xml(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    ).encode()


class FakeEndpoint:
    """An HTTP server standing in for STS. `plan(n, action)` decides the n-th
    request (from 1): a (status, body) tuple to answer with, or "forward" to
    pass it unchanged (Host header included, so SigV4 still matches) to
    `forward_to`."""

    def __init__(self, plan: Callable[[int, str], Any], forward_to: str | None = None):
        self.plan = plan
        self.forward_to = forward_to
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                n_bytes = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n_bytes)
                m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
                action = m.group(1).decode() if m else "?"
                with outer._lock:
                    outer.requests.append({"action": action, "at": time.monotonic()})
                    n = len(outer.requests)
                decision = outer.plan(n, action)
                if decision == "forward":
                    status, headers, data = outer._forward(self.command, self.path, self.headers, body)
                else:
                    status, data = decision
                    headers = {"Content-Type": "text/xml"}
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.forward_to, "forward without a target"
        host, port = self.forward_to.split("//", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        hdrs = {k: v for k, v in headers.items() if k.lower() not in ("connection",)}
        conn.request(method, path, body=body, headers=hdrs)  # Host kept as signed
        resp = conn.getresponse()
        data = resp.read()
        out = dict(resp.getheaders())
        conn.close()
        return resp.status, out, data

    def actions(self) -> list[str]:
        with self._lock:
            return [r["action"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeEndpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------
# Output checks


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


# --------------------------------------------------------------------------
# A private D-Bus session with its own gnome-keyring


def keyring_session_argv(password: str, command: list[str]) -> list[str]:
    """argv that runs `command` in a new D-Bus session whose gnome-keyring was
    started with `--unlock` and `password` (a wrong one leaves an existing
    login keyring locked)."""
    script = (
        'printf %s "$0" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; '
        'exec "$@"'
    )
    return ["dbus-run-session", "--", "bash", "-c", script, password, *command]


# --------------------------------------------------------------------------
# Many processes at once


class Finished:
    """What one of several parallel processes did."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str, seconds: float):
        self.args = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"<exit {self.returncode} after {self.seconds:.1f}s: {self.stderr.strip()[:500]!r}>"


def run_parallel(argvs: list[list[str]], env: Mapping[str, str], cwd: str | os.PathLike,
                 timeout: float = 120) -> list[Finished]:
    """Starts every argv at once (no terminal, stdin /dev/null) and collects them."""
    import subprocess

    start = time.monotonic()
    procs = [
        subprocess.Popen(a, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        for a in argvs
    ]
    results: list[Finished | None] = [None] * len(procs)

    def collect(i: int, p: Any) -> None:
        out, err = p.communicate()
        results[i] = Finished(argvs[i], p.returncode, out, err, time.monotonic() - start)

    threads = [threading.Thread(target=collect, args=(i, p), daemon=True) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    deadline = start + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [i for i, r in enumerate(results) if r is None]
    for i in hung:
        try:
            os.killpg(procs[i].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for t in threads:
        t.join(5)
    assert not hung, f"{len(hung)} of {len(procs)} processes still running after {timeout}s"
    return results  # type: ignore[return-value]
