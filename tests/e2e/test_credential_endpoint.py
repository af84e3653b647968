"""The local credential endpoint (issue 11): `stsmfa exec --server` and
`stsmfa serve` speak the container credentials protocol
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN), so
real SDKs (boto3, the AWS CLI, the AWS SDK for JavaScript v3) renew their
credentials from stsmfa themselves, across session expiries.

Sessions are made short so that expiries pass in seconds: `ShortSessions`
stands between stsmfa and the bed, shortens the Expiration of the sessions
the bed issues (15 minutes at least, as STS) and has the bed expire each one
at that time, so that a client still using an old one fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mfa_bed import policies

from assertions import assert_error
from fake_endpoints import sts_error_xml
from fake_programs import fake_program, read_json_lines
from harness import REPO, VENV_BIN, missing, sts_ok, wait_until
from pty_driver import PtyProcess

JS_DIR = REPO / "tests" / "e2e" / "js"

BOTO3_LOOP = r"""
import json, sys, time
import boto3
seconds, interval = float(sys.argv[1]), float(sys.argv[2])
session = boto3.Session()
sts = session.client("sts")
out = {"calls": 0, "failures": [], "keys": []}
end = time.time() + seconds
while time.time() < end:
    out["calls"] += 1
    try:
        sts.get_caller_identity()
        key = session.get_credentials().get_frozen_credentials().access_key
        if not out["keys"] or out["keys"][-1] != key:
            out["keys"].append(key)
    except Exception as e:  # noqa: BLE001 - the test reports every failure
        out["failures"].append(f"{type(e).__name__}: {e}")
    time.sleep(interval)
print(json.dumps(out))
"""

AWS_CLI_LOOP = r"""
end=$(( $(date +%s) + $1 )); calls=0; failures=0
while [ "$(date +%s)" -lt "$end" ]; do
    calls=$((calls + 1))
    aws sts get-caller-identity --output json > /dev/null 2>> "$2" || failures=$((failures + 1))
    sleep "$3"
done
printf '{"calls": %d, "failures": %d}\n' "$calls" "$failures"
"""


# ---------------------------------------------------------------------------
# Helpers


class ShortSessions:
    """STS for stsmfa: forwards to the bed, but the sessions of the actions in
    `lifetimes` (GetSessionToken, AssumeRole) get an Expiration that many
    seconds away, and the bed expires each one then. `down = True` answers
    every STS call 503; `delay` holds GetSessionToken answers back."""

    def __init__(self, bed: Any, lifetimes: dict[str, float]):
        self.bed = bed
        self.lifetimes = lifetimes
        self.down = False
        self.delay = 0.0
        self.counts: dict[str, int] = {}
        self.timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
                action = m.group(1).decode() if m else "?"
                status, data = outer._answer(action, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, action: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.counts[action] = self.counts.get(action, 0) + 1
        if self.down:
            return 503, sts_error_xml("ServiceUnavailable", "Service is unavailable (planned outage)")
        if action == "GetSessionToken" and self.delay:
            time.sleep(self.delay)
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.bed.port, timeout=30)
        conn.request("POST", path, body=body, headers={k: v for k, v in headers.items() if k.lower() != "connection"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        seconds = self.lifetimes.get(action)
        if resp.status == 200 and seconds:
            key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", data).group(1).decode()
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
            data = re.sub(rb"<Expiration>[^<]+</Expiration>", f"<Expiration>{expiry}</Expiration>".encode(), data)
            t = threading.Timer(seconds, self.bed.expire_session, args=(key,))
            t.daemon = True
            t.start()
            self.timers.append(t)
        return resp.status, data

    def count(self, action: str) -> int:
        with self._lock:
            return self.counts.get(action, 0)

    def close(self) -> None:
        for t in self.timers:
            t.cancel()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def short_sessions(bed):
    made: list[ShortSessions] = []

    def make(**lifetimes: float) -> ShortSessions:
        s = ShortSessions(bed, lifetimes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="session")
def node_sdk() -> str:
    node = shutil.which("node")
    if not node:
        missing("node not found (tests/run.sh installs nodejs)")
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        missing("the AWS SDK for JavaScript v3 is not installed in tests/e2e/js (tests/run.sh runs npm ci)")
    return node


def through(home, sts: ShortSessions, min_ttl: str) -> None:
    """stsmfa (and its SDK children) reach STS through `sts`; a short refresh margin."""
    home.env["AWS_ENDPOINT_URL_STS"] = sts.endpoint
    home.env["STSMFA_MIN_TTL"] = min_ttl


class Serving:
    """A running `stsmfa serve`: its process, the two variables it printed."""

    def __init__(self, home, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen(
            [str(home.bin), "serve", *args, "--format", "dotenv"],
            env=home._env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.vars: dict[str, str] = {}
        for _ in range(2):
            line = self.proc.stdout.readline()
            assert line, f"serve printed no variables; stderr: {self.stderr_now()}"
            k, v = line.rstrip("\n").split("=", 1)
            self.vars[k] = v
        self.url = self.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        self.token = self.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        self._stderr = ""

    def stderr_now(self) -> str:
        return "(running)" if self.proc.poll() is None else self.proc.stderr.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"serve did not stop on signal {sig}")
        self._stderr += self.proc.stderr.read()
        return code, self._stderr

    def get(self, token: str | None = "", path: str | None = None, method: str = "GET",
            host: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
        url = self.url if path is None else self.url.rsplit("/", 1)[0] + path
        req = urllib.request.Request(url, method=method)
        if token is not None:
            req.add_header("Authorization", self.token if token == "" else token)
        if host is not None:
            req.add_header("Host", host)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def child_env(self) -> dict[str, str]:
        return dict(self.vars)


@pytest.fixture
def serving():
    started: list[Serving] = []

    def start(home, *args, env=None) -> Serving:
        s = Serving(home, *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(pid: int, seconds: float, during=None) -> float:
    before = cpu_seconds(pid)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if during:
            during()
        time.sleep(0.25)
    return cpu_seconds(pid) - before


def add_role(home, bed, user, name: str = "prod-admin"):
    """A role in another account trusting `user` with MFA, and its role profile."""
    role = bed.create_role(
        f"Admin-{user.name}",
        policies.trust_user(user.arn),
        policies.allow_actions(["iam:ListRoles", "sts:AssumeRole"], require_mfa=True),
        account="444455556666",
    )
    home.set_config(f"profile {name}", {"role_arn": role.arn, "source_profile": "work", "region": "us-east-1"})
    return role


def served_keys(stderr: str) -> list[str]:
    """The masked key IDs the endpoint handed out, in order, from its -v log."""
    keys: list[str] = []
    for m in re.finditer(r"endpoint: GET /credentials 200 (\S+)", stderr):
        if not keys or keys[-1] != m.group(1):
            keys.append(m.group(1))
    return keys


# ---------------------------------------------------------------------------
# Real SDKs across expiries


def test_boto3_the_aws_cli_and_the_js_sdk_renew_across_two_mfa_session_expiries(
    home, user, bed, short_sessions, aws_cli, boto3_available, node_sdk
):
    """One `exec --server` job running three real SDKs at once for 72 s, while
    MFA sessions last 36 s (renewed 4 s before): no failed call, and one
    code (one GetSessionToken) per MFA session."""
    sts = short_sessions(GetSessionToken=36)
    through(home, sts, "4s")
    prof = home.add_source_profile("work", user)
    script = home.tools / "boto3_loop.py"
    script.write_text(BOTO3_LOOP)
    cli_loop = home.tools / "cli_loop.sh"
    cli_loop.write_text(AWS_CLI_LOOP)
    out = home.tools
    job = (
        f'"{VENV_BIN}/python" "{script}" 72 0.5 > "{out}/boto3.json" & '
        f'node "{JS_DIR}/endpoint_loop.js" 72 500 > "{out}/js.json" & '
        f'sh "{cli_loop}" 72 "{out}/cli.err" 2 > "{out}/cli.json"; wait'
    )
    cp = home.run("-v", "exec", "--server", "work", "--", "sh", "-c", job, timeout=150)
    assert cp.returncode == 0, cp.stderr

    boto = json.loads((out / "boto3.json").read_text())
    js = json.loads((out / "js.json").read_text())
    cli = json.loads((out / "cli.json").read_text())
    assert boto["failures"] == [] and boto["calls"] > 50, boto
    assert js["failures"] == [] and js["calls"] > 50, js
    assert cli["failures"] == 0 and cli["calls"] >= 10, (cli, (out / "cli.err").read_text())
    assert js["arns"] == [user.arn], js
    # Each SDK went through at least three sessions: two expiries.
    assert len(set(boto["keys"])) >= 3, boto
    assert len(set(js["keys"])) >= 3, js
    sessions = served_keys(cp.stderr)
    assert len(sessions) >= 3, cp.stderr
    # One code per MFA session, and nothing else asked STS for one.
    assert home.calls(prof.log) == len(sessions) == sts.count("GetSessionToken") == sts_ok(bed, user)
    assert len(sessions) <= 4, cp.stderr


def test_role_sessions_renew_without_a_second_code_while_the_mfa_session_lasts(
    home, user, bed, short_sessions, boto3_available
):
    """A role limited to short sessions: boto3 goes through several role
    sessions (AssumeRole with the cached MFA session), one code in all."""
    sts = short_sessions(AssumeRole=12)
    through(home, sts, "4s")
    prof = home.add_source_profile("work", user)
    add_role(home, bed, user)
    script = home.tools / "boto3_loop.py"
    script.write_text(BOTO3_LOOP)
    cp = home.run("-v", "exec", "--server", "prod-admin", "--", str(VENV_BIN / "python"), str(script), "30", "0.3",
                  timeout=90)
    assert cp.returncode == 0, cp.stderr
    boto = json.loads(cp.stdout)
    assert boto["failures"] == [] and boto["calls"] > 40, boto
    assert len(set(boto["keys"])) >= 3, boto
    assert sts.count("AssumeRole") == len(served_keys(cp.stderr)) >= 3, cp.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


# ---------------------------------------------------------------------------
# exec --server


def test_exec_server_gives_the_endpoint_and_no_static_keys(home, user, bed, aws_cli):
    home.add_source_profile("work", user)
    probe = (
        'for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE '
        'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; do '
        '  eval "[ -z \\"\\${$v+x}\\" ]" || { echo "$v still set" >&2; exit 90; }; done; '
        'printf "%s\\n%s\\n%s\\n" "$AWS_CONTAINER_CREDENTIALS_FULL_URI" "$AWS_CONTAINER_AUTHORIZATION_TOKEN" "$STSMFA_PROFILE"; '
        'aws iam list-users --output json > /dev/null || exit 91'
    )
    env = {"AWS_PROFILE": "work", "AWS_ACCESS_KEY_ID": "AKIASTALE", "AWS_SECRET_ACCESS_KEY": "stale",
           "AWS_SESSION_TOKEN": "stale", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/creds",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/nonexistent"}
    cached = home.credential_process("work")
    cp = home.run("-v", "exec", "--server", "work", "--", "sh", "-c", probe, env=env)
    assert cp.returncode == 0, cp.stderr
    # A cache hit too is served by the endpoint in stsmfa-sts, never by the
    # small binary exec()ing CMD with fixed keys.
    assert "handing over to" in cp.stderr, cp.stderr
    assert cached["SecretAccessKey"] not in cp.stdout + cp.stderr
    url, token, profile = cp.stdout.splitlines()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/credentials", url), url
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token), "the token is not 32+ random bytes in base64url"
    assert profile == "work"
    assert token not in cp.stderr


def test_exec_server_passes_the_exit_code_and_signals_and_the_endpoint_dies_with_cmd(home, user, bed):
    home.add_source_profile("work", user)
    cp = home.run("exec", "--server", "work", "--", "sh", "-c", "exit 42")
    assert cp.returncode == 42, cp.stderr

    # SIGTERM to stsmfa reaches CMD once; stsmfa leaves with 128+15 as CMD did.
    marker = home.tools / "trapped"
    url_file = home.tools / "url"
    proc = subprocess.Popen(
        [str(home.bin), "exec", "--server", "work", "--", "sh", "-c",
         f'trap \'echo term >> "{marker}"; trap - TERM; kill -TERM $$\' TERM; '
         f'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI" > "{url_file}"; '
         'while :; do sleep 0.1; done'],
        env=home._env(None), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert wait_until(lambda: url_file.exists() and url_file.read_text().strip(), 30), proc.stderr
    url = url_file.read_text().strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 128 + signal.SIGTERM
    assert marker.read_text() == "term\n", "the signal reached CMD once"
    port = int(url.split(":")[2].split("/")[0])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3)


# ---------------------------------------------------------------------------
# Security


def test_only_the_token_on_loopback_gets_anything(home, user, bed, serving):
    home.add_source_profile("work", user)
    s = serving(home, "work", "-v")
    status, body = s.get()
    assert status == 200, body
    cred = json.loads(body)
    assert set(cred) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, cred
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cred["Expiration"]), cred
    assert bed.session_info(cred["AccessKeyId"])["mfa"] is True

    wrong = s.token[:-1] + ("A" if s.token[-1] != "A" else "B")
    for kw in ({"token": None}, {"token": wrong}, {"token": "Bearer " + s.token}, {"token": s.token + "x"},
               {"host": "evil.example"}, {"host": f"evil.example:{s.url.split(':')[2].split('/')[0]}"},
               {"host": "127.0.0.2"}, {"token": None, "path": "/"}, {"token": None, "method": "POST"}):
        status, body = s.get(**kw)
        assert (status, body) == (403, b""), (kw, status, body)
    assert s.get(path="/")[0] == 404
    assert s.get(path="/credentials/../x")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        assert s.get(method=method)[0] == 405, method

    # The token is in no process's arguments.
    ps = subprocess.run(["ps", "-eo", "pid,args", "ww"], capture_output=True, text=True, check=True)
    assert s.token not in ps.stdout
    code, stderr = s.stop()
    assert code == 0, stderr
    for secret in (s.token, cred["SecretAccessKey"], cred["Token"]):
        assert secret not in stderr
    assert cred["AccessKeyId"] not in stderr, "key IDs are logged masked"
    assert re.search(r"endpoint: GET /credentials 200 ASIA…\w{4}", stderr), stderr
    assert "endpoint: GET /credentials 403" in stderr and "endpoint: POST /credentials 405" in stderr
    # Nor in any file under HOME, the state directory, TMPDIR or the tools.
    for path in home.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for secret in (s.token, cred["SecretAccessKey"], cred["Token"]):
                assert secret.encode() not in data, f"a secret in {path}"


def test_a_second_user_gets_nothing(home, user, bed, serving):
    """Another user can reach the port but has no token: it cannot read the
    environment of stsmfa's children, nor of stsmfa."""
    home.add_source_profile("work", user)
    s = serving(home, "work")
    url_file = home.tools / "child-url"
    child = subprocess.Popen(
        [str(home.bin), "exec", "--server", "work", "--", "sh", "-c",
         f'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI" > "{url_file}"; sleep 30'],
        env=home._env(None), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: url_file.exists() and url_file.read_text().strip(), 30)
        pids = [str(s.proc.pid), str(child.pid)] + subprocess.run(
            ["pgrep", "-P", str(child.pid)], capture_output=True, text=True).stdout.split()
        probe = (
            "import sys, urllib.request, urllib.error\n"
            "url, pids = sys.argv[1], sys.argv[2:]\n"
            "for p in pids:\n"
            "    try:\n"
            "        open(f'/proc/{p}/environ', 'rb').read(); print('read', p)\n"
            "    except PermissionError:\n"
            "        pass\n"
            "try:\n"
            "    urllib.request.urlopen(url, timeout=5); print('served')\n"
            "except urllib.error.HTTPError as e:\n"
            "    print('status', e.code)\n"
        )
        other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "/usr/bin/python3", "-c", probe, s.url, *pids],
                               capture_output=True, text=True, timeout=30)
        if "setresuid failed" in other.stderr or "setgroups failed" in other.stderr:
            # A user namespace that maps only root (as tests/run.sh runs in):
            # no second user exists. What keeps one out is checked instead:
            # the environments are readable by their owner only.
            for p in pids:
                st = os.stat(f"/proc/{p}/environ")
                assert st.st_mode & 0o077 == 0 and st.st_uid == os.getuid(), (p, oct(st.st_mode))
        else:
            assert other.returncode == 0, other.stderr
            assert other.stdout.split() == ["status", "403"], other.stdout
    finally:
        child.kill()
        child.wait()
    assert s.get(token=None)[0] == 403


# ---------------------------------------------------------------------------
# Renewal: one at a time, waiting, failing


def test_a_hundred_concurrent_requests_during_one_renewal_make_one_sts_call(
    home, user, bed, short_sessions, serving
):
    sts = short_sessions(GetSessionToken=9)
    through(home, sts, "4s")
    prof = home.add_source_profile("work", user)
    s = serving(home, "work")
    first = json.loads(s.get()[1])["AccessKeyId"]
    assert sts.count("GetSessionToken") == 1
    sts.delay = 2.0  # the renewal takes 2 s: every request comes during it
    time.sleep(5.5)  # now within the 4 s margin

    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda _: s.get(timeout=60), range(100)))
    assert all(status == 200 for status, _ in answers), {status for status, _ in answers}
    keys = {json.loads(body)["AccessKeyId"] for _, body in answers}
    assert len(keys) == 1 and first not in keys, keys
    assert sts.count("GetSessionToken") == 2 and home.calls(prof.log) == 2
    code, stderr = s.stop(signal.SIGINT)
    assert code == 0 and "stopped" in stderr, stderr


def test_sts_down_during_a_renewal_fails_the_call_with_the_message_and_no_busy_cpu(
    home, user, bed, short_sessions, serving, boto3_available
):
    """A role profile whose role sessions last 8 s: STS is down when one is
    renewed (AssumeRole, no code needed), then back."""
    sts = short_sessions(AssumeRole=8)
    through(home, sts, "4s")
    prof = home.add_source_profile("work", user)
    add_role(home, bed, user)
    s = serving(home, "prod-admin", "-v")
    env = {**s.child_env(), "AWS_PROFILE": None, "AWS_DEFAULT_REGION": "us-east-1"}
    call = """
        import boto3
        print(boto3.client("iam").list_roles()["Roles"] is not None)
    """
    cp = home.boto3(call, env=env)
    assert cp.returncode == 0 and cp.stdout.strip() == "True", cp.stderr
    assert cpu_over(s.proc.pid, 3) < 0.05, "idle endpoint uses CPU"

    sts.down = True
    time.sleep(1.5)  # within the margin now: the next request renews
    cp = home.boto3(call, env=env)
    assert cp.returncode != 0
    assert "Received non 200 response 500 from container metadata" in cp.stderr, cp.stderr
    assert "stsmfa: " in cp.stderr and "unavailable" in cp.stderr.lower(), cp.stderr
    # Failing, with and without an SDK asking: no retry loop, no busy CPU.
    assert cpu_over(s.proc.pid, 3) < 0.05
    assert cpu_over(s.proc.pid, 3, during=lambda: s.get()) < 0.3

    sts.down = False
    time.sleep(5.5)  # a failure is answered from memory for 5 s
    cp = home.boto3(call, env=env)
    assert cp.returncode == 0 and cp.stdout.strip() == "True", cp.stderr
    code, stderr = s.stop()
    assert len(re.findall(r"could not renew the session", stderr)) == 1, stderr
    assert "renewed the session again" in stderr
    # About 12 s of failing, with requests whenever one was not waiting for
    # a renewal: one renewal per 5 s at most (the failing ones and the one
    # that worked), not one per request.
    requests = len(re.findall(r"endpoint: GET /credentials 500", stderr))
    renewals = len(re.findall(r"renewing the session \(renewal", stderr))
    assert requests > renewals and renewals <= 4, (requests, renewals, stderr)
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1, "role renewals need no code"


def test_no_way_to_ask_for_a_code_is_one_error_line_and_an_answer_naming_the_fix(
    home, user, bed, short_sessions, serving, keyutils_ok
):
    """The MFA session expired and the profile has no mfa_process and there
    is no terminal: HTTP 500 whose message names the ways out, one line on
    stderr, no retry in a loop."""
    sts = short_sessions(GetSessionToken=8)
    through(home, sts, "4s")
    home.env["STSMFA_STORE"] = "keyutils"
    home.add_source_profile("work", user)
    home.credential_process("work")  # cached with the mfa_process
    home.config.remove_option("profile work", "mfa_process")
    home._write_files()
    s = serving(home, "work")
    assert s.get()[0] == 200, "the cached session is served"
    time.sleep(4.5)
    answers = []
    for _ in range(20):
        answers.append(s.get())
        time.sleep(0.4)  # 8 s of asking: past the 5 s hold once
    assert {status for status, _ in answers} == {500}, answers
    msg = json.loads(answers[0][1])["message"]
    assert "no terminal" in msg and "mfa_process" in msg and "--mfa-code" in msg, msg
    assert sts.count("GetSessionToken") == 1, "nothing was sent to STS without a code"
    code, stderr = s.stop()
    lines = stderr.splitlines()
    logged = [ln for ln in lines if "could not renew the session" in ln]
    assert len(logged) == 1 and logged[0].startswith("stsmfa: warning: "), stderr
    assert "mfa_process" in logged[0], logged
    assert not any(ln.startswith("hint:") for ln in lines), stderr


def test_requests_wait_while_the_code_is_awaited(home, user, bed, short_sessions, serving):
    """A code source that takes 3 s (a person typing): the requests of that
    time wait and then get the new session, none fails."""
    sts = short_sessions(GetSessionToken=8)
    through(home, sts, "4s")
    prof = home.add_source_profile("work", user)
    slow = f"sleep 3; {home.mfa_process(user, prof.log)}"
    home.set_config("profile work", {"mfa_process": slow})
    s = serving(home, "work")
    time.sleep(4.5)
    began = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: s.get(timeout=60), range(5)))
    assert [a[0] for a in answers] == [200] * 5, answers
    assert time.monotonic() - began >= 2.5
    assert home.calls(prof.log) == 2


# ---------------------------------------------------------------------------
# The terminal CMD was started from


FETCH_TWICE = r"""
import json, os, sys, time, urllib.request
def key():
    req = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    req.add_header("Authorization", os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    with urllib.request.urlopen(req, timeout=90) as r:
        return json.loads(r.read())["AccessKeyId"]
first = key()
time.sleep(float(sys.argv[1]))
print("KEYS", first, key(), flush=True)
import signal
signal.signal(signal.SIGINT, lambda *a: print("SIGINT", flush=True))
print("READY", flush=True)
signal.pause()
time.sleep(0.5)
sys.exit(3)
"""


def test_a_renewal_asks_on_the_terminal_cmd_was_started_from_and_ctrl_c_reaches_cmd_once(
    home, user, bed, short_sessions
):
    sts = short_sessions(GetSessionToken=8)
    through(home, sts, "4s")
    home.add_source_profile("work", user, mfa_process=False)
    script = home.tools / "fetch_twice.py"
    script.write_text(FETCH_TWICE)
    term = PtyProcess([str(home.bin), "exec", "--server", "work", "--", str(VENV_BIN / "python"), str(script), "5"],
                      env=home._env({"TERM": "dumb"}), cwd=home.root)
    try:
        term.expect(r"MFA code for profile work", timeout=30)
        term.sendline(home.code(user))
        # The session is stale after 4 s: the request waits while stsmfa asks again.
        term.expect(r"MFA code for profile work", timeout=60)
        term.sendline(home.code(user))
        m = term.expect(r"KEYS (\S+) (\S+)(?=\s)", timeout=60)
        assert m.group(1) != m.group(2), term.text
        term.expect("READY")
        term.send("\x03")  # Ctrl-C: SIGINT from the terminal to its foreground group
        term.expect("SIGINT")
        rc = term.wait(timeout=15)
    finally:
        term.close()
    assert rc == 3, term.text
    assert term.text.count("SIGINT") == 1, f"Ctrl-C reached CMD more than once:\n{term.text}"
    assert sts_ok(bed, user) == 2


def test_serve_on_a_port_in_use_is_one_clear_error_before_any_code(home, user, bed):
    prof = home.add_source_profile("work", user)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cp = home.run("serve", "work", "--port", str(port))
    assert_error(cp, f"cannot listen on 127.0.0.1:{port}", "--port", hint=True)
    assert home.calls(prof.log) == 0 and sts_ok(bed, user) == 0


def test_a_renewal_asks_ykman_when_the_profile_says_so(home, user, bed, short_sessions, serving):
    """The profile's code source for a renewal: `stsmfa_prompt = ykman` (a
    fake ykman first on PATH), with no terminal."""
    sts = short_sessions(GetSessionToken=8)
    through(home, sts, "4s")
    fakes = home.root / "fakes"
    log = home.tools / "ykman.log"
    fake_env = fake_program(fakes, "ykman", home._seed_file(user), log, output="AWS:alice  {code}")
    home.add_source_profile("work", user, mfa_process=False, extra={"stsmfa_prompt": "ykman"})
    s = serving(home, "work", env={**fake_env, "PATH": f"{fakes}:{home.env['PATH']}"})
    first = json.loads(s.get()[1])["AccessKeyId"]
    time.sleep(4.5)
    status, body = s.get(timeout=90)  # may wait for the next 30-second code
    assert status == 200, body
    assert json.loads(body)["AccessKeyId"] != first
    assert [c["argv"] for c in read_json_lines(log)] == [["oath", "accounts", "code", "-s", user.serial]] * 2
    assert sts_ok(bed, user) == 2
