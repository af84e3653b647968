"""A narrated tour of stsmfa against a local MFA-enforcing STS/IAM server.

Run it with tests/demo.sh, which gives it a temporary HOME and a private keyring.
Every command is shown as `$ ...` followed by its output. Exits 1 if a step fails.
"""

import codecs
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

if "STSMFA_DEMO_ROOT" not in os.environ:  # never write to a real ~/.aws
    sys.exit("demo.py: run tests/demo.sh instead (it sets up a temporary HOME)")
ROOT = Path(os.environ["STSMFA_DEMO_ROOT"])
sys.path.insert(0, str(ROOT / "tests/e2e"))
from mfa_bed import Bed, BedError, policies  # noqa: E402
from mfa_bed.otp import code_for_step, step_at  # noqa: E402

HOME = Path(os.environ["HOME"])
STYLE = sys.stdout.isatty()
PROMPT = re.compile(r"MFA code for profile \S+ \([^)]*\): ")
ENV: dict[str, str] = {}  # the environment of every command, set in main()


class Failed(Exception):
    pass


def heading(text):
    print(f"\n\033[1m== {text}\033[0m" if STYLE else f"\n== {text}")


def note(text):
    print(f"\033[2m# {text}\033[0m" if STYLE else f"# {text}")


def check(ok, what):
    if not ok:
        raise Failed(what)


def tilde(text):
    return text.replace(str(HOME), "~")


def show(cmd):
    print("$ " + tilde(shlex.join(cmd)), flush=True)


def run(*cmd, ok=True):
    """Runs cmd, prints its output; checks that it succeeds (or fails, ok=False)."""
    show(cmd)
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    print(tilde(p.stdout), end="" if p.stdout.endswith("\n") or not p.stdout else "\n")
    check((p.returncode == 0) == ok, f"`{shlex.join(cmd)}` exited with {p.returncode}")
    return p.stdout


def run_tty(*cmd, answer=None, timeout=150):
    """Runs cmd on a new pseudo-terminal (its /dev/tty), echoing what it shows.
    answer(n, output) gives the reply to the n-th MFA code prompt."""
    show(cmd)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        try:
            os.execvpe(cmd[0], list(cmd), ENV)
        finally:
            os._exit(127)
    out, answered, deadline = "", 0, time.monotonic() + timeout
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may split a character
    try:
        while True:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise Failed(f"`{shlex.join(cmd)}` did not finish within {timeout} s")
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: everyone closed the terminal
                data = b""
            if not data:
                break
            chunk = utf8.decode(data).replace("\r\n", "\n")
            out += chunk
            print(tilde(chunk), end="", flush=True)
            if answer and len(PROMPT.findall(out)) > answered:
                answered += 1
                os.write(fd, (answer(answered, out) + "\n").encode())
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(fd)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    check(code == 0, f"`{shlex.join(cmd)}` exited with {code}")
    return out


def demo(bed):
    alice = bed.create_user("alice", policies.deny_all_except_listed_if_no_mfa(), mfa=False)
    note(f"created IAM user {alice.arn} (no MFA device yet), under AWS's example policy")
    note("DenyAllExceptListedIfNoMFA, and her access key in ~/.aws/credentials:")
    aws = HOME / ".aws"
    aws.mkdir(mode=0o700)
    (aws / "credentials").write_text(
        f"[work]\naws_access_key_id = {alice.access_key_id}\naws_secret_access_key = {alice.secret_access_key}\n")
    (aws / "config").write_text(
        "[profile work]\nregion = us-east-1\n\n"
        "[profile work-mfa]\ncredential_process = stsmfa credential-process work\nregion = us-east-1\n")
    run("cat", str(aws / "credentials"), str(aws / "config"))

    heading("2. Without MFA, the long-term key can do almost nothing")
    out = run("aws", "iam", "list-users", "--profile", "work", ok=False)
    check("AccessDenied" in out, "expected AccessDenied for the long-term key")

    heading("3. alice enrolls her own virtual MFA device")
    note("the demo plays the authenticator app: it reads the secret that --show-secret prints")
    note("and types two consecutive codes; the server (like AWS) accepts codes one 30-s step")
    note("either side of now, so it types the previous and the current code instead of waiting")
    codes = []

    def authenticator(n, out):
        if n == 1:
            seed = re.search(r"Secret \(base32\): ([A-Z2-7=]+)", out)
            check(seed, "enroll printed no secret")
            codes.append(seed.group(1))
            now = step_at()
            codes.extend([code_for_step(codes[0], now - 1), code_for_step(codes[0], now)])
        check(n <= 2, "enroll asked for a third code: a code was rejected")
        return codes[n]

    out = run_tty("stsmfa", "enroll", "work", "--show-secret", "--yes", answer=authenticator)
    serial = re.search(r"MFA device (arn:aws:iam::\d+:mfa/alice) is enabled", out)
    check(serial, "enroll did not report the device as enabled")
    serial = serial.group(1)
    check(bed.mfa_devices("alice"), "the server has no MFA device for alice")

    heading("4. --yes recorded the device in ~/.aws/config (other lines kept)")
    check(f"mfa_serial = {serial}" in run("cat", str(aws / "config")), "no mfa_serial in ~/.aws/config")

    heading("5. aws CLI calls through credential_process")
    log = HOME / "authenticator.log"
    script = HOME / "authenticator.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests/e2e')!r})\nfrom mfa_bed import totp\n"
        f"code = totp({codes[0]!r})\nopen({str(log)!r}, 'a').write(code + '\\n')\nprint(code)\n")
    note("instead of a prompt, the code comes from `mfa_process` (as with `ykman oath accounts code`):")
    note("here a tiny script that prints the current code and logs each time it runs")
    cfg = (aws / "config").read_text()
    line = f"mfa_process = {shlex.join([sys.executable, str(script)])}\n"
    (aws / "config").write_text(cfg.replace("[profile work]\n", "[profile work]\n" + line, 1))
    run("cat", str(aws / "config"))
    note("the enrollment's last code is spent; if its 30-s window is still current, stsmfa")
    note("waits for the next one (up to 30 s) rather than send a code STS would reject")
    out = run_tty("aws", "sts", "get-caller-identity", "--profile", "work-mfa")
    check(alice.arn in out, "get-caller-identity did not answer with alice's ARN")
    out = run("aws", "iam", "list-users", "--profile", "work-mfa")
    check('"UserName": "alice"' in out, "list-users did not list alice")
    calls = log.read_text().split() if log.exists() else []
    note(f"mfa_process ran {len(calls)} time(s): one code, one session, used by both calls")
    check(len(calls) == 1, f"expected 1 mfa_process run, got {len(calls)}")

    heading("6. The session is cached in the keyring (here a private kernel keyring)")
    out = run("stsmfa", "status")
    check("work" in out and serial in out, "status does not list the session")
    run("aws", "iam", "list-mfa-devices", "--user-name", "alice", "--profile", "work-mfa")
    calls = log.read_text().split()
    gst = bed.stats().get("get_session_token", {}).get("alice", 0)
    note(f"mfa_process runs: {len(calls)}; GetSessionToken calls seen by the server: {gst}")
    check(len(calls) == 1 and gst == 1, "the cached session was not reused")
    note("cache hit: no new code, no STS call, for the next 12 hours")


def main():
    global ENV
    ENV = dict(os.environ)
    ENV.pop("AWS_CA_BUNDLE", None)
    ENV["PATH"] = os.pathsep.join([str(ROOT / "target/debug"), str(Path(sys.executable).parent), ENV["PATH"]])
    ENV["STSMFA_STATE_DIR"] = str(HOME / ".stsmfa-state")
    ENV["AWS_EC2_METADATA_DISABLED"] = "true"
    heading("1. A local STS/IAM server that enforces MFA (tests/e2e/mfa_bed), and an IAM user")
    try:
        bed = Bed.start()
    except BedError as e:
        print(f"demo: FAILED: the local STS/IAM server did not start: {e}", file=sys.stderr)
        return 1
    ENV["AWS_ENDPOINT_URL"] = bed.endpoint
    note(f"{bed.endpoint}: moto, patched to check TOTP codes and IAM policy conditions like AWS")
    note(f"every aws/stsmfa call below goes there (AWS_ENDPOINT_URL); HOME is {HOME} (temporary)")
    try:
        demo(bed)
    except (Failed, BedError, subprocess.TimeoutExpired) as e:
        print(f"\ndemo: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        heading("7. Stopping the server")
        bed.stop()
    print("\nDone: enrolled, denied without MFA, allowed with it, and one code served every call.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
