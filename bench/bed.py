"""Helpers for bench/run.sh: the MFA test bed, its users, and parallel runs.

Run with the e2e venv's python (target/e2e-venv/bin/python):

  bed.py serve DIR          start the bed, write its URL to DIR/endpoint, run until
                            SIGTERM/SIGINT, then stop it
  bed.py user URL NAME DIR  create an IAM user with an enabled virtual MFA device and
                            AWS's DenyAllExceptListedIfNoMFA policy; write its seed to
                            DIR/NAME.seed; print KEY_ID SECRET SERIAL on one line
  bed.py role URL NAME USER create a role NAME in account 444455556666 whose trust
                            policy lets IAM user USER assume it with MFA; print its ARN
  bed.py sts URL NAME       GetSessionToken calls the bed answered for user NAME
  bed.py assumed URL NAME   AssumeRole calls the bed answered for user NAME
  bed.py fanout N CMD...    start N copies of CMD at once (stdout captured), wait for
                            all; print "WALL_SECONDS OK_COUNT" where OK_COUNT counts
                            exit 0 with credential_process JSON on stdout
  bed.py rss CMD...         run CMD once (stdout discarded); print its peak
                            resident set size in KiB
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

from mfa_bed import Bed, policies  # noqa: E402


def serve(out_dir: str) -> None:
    bed = Bed.start()
    stop = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        tmp = Path(out_dir) / "endpoint.tmp"
        tmp.write_text(bed.endpoint)
        tmp.rename(Path(out_dir) / "endpoint")
        while not stop and bed.process.poll() is None:
            time.sleep(0.2)
    finally:
        bed.stop()
        if bed.log_path:
            Path(bed.log_path).unlink(missing_ok=True)


def user(endpoint: str, name: str, out_dir: str) -> None:
    u = Bed(endpoint).create_user(name, policies.deny_all_except_listed_if_no_mfa())
    seed = Path(out_dir) / f"{name}.seed"
    seed.write_text(u.seed)
    seed.chmod(0o600)
    print(u.access_key_id, u.secret_access_key, u.serial)


def role(endpoint: str, name: str, user_name: str) -> None:
    r = Bed(endpoint).create_role(
        name,
        policies.trust_user(f"arn:aws:iam::123456789012:user/{user_name}"),
        policies.allow_actions(["iam:ListRoles"], require_mfa=True),
        account="444455556666",
    )
    print(r.arn)


def sts(endpoint: str, name: str) -> None:
    print(Bed(endpoint).stats().get("get_session_token", {}).get(name, 0))


def assumed(endpoint: str, name: str) -> None:
    print(Bed(endpoint).stats().get("assume_role", {}).get(name, 0))


def fanout(n: int, cmd: list[str]) -> None:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - start
    ok = 0
    for p, out in zip(procs, outs):
        try:
            doc = json.loads(out)
            ok += p.returncode == 0 and doc.get("Version") == 1 and doc["AccessKeyId"].startswith("ASIA")
        except (ValueError, KeyError, AttributeError):
            pass
    print(f"{wall:.4f} {ok}")


def rss(cmd: list[str]) -> None:
    # This process has no other children, so RUSAGE_CHILDREN is CMD's alone.
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main(argv: list[str]) -> int:
    match argv:
        case ["serve", out_dir]:
            serve(out_dir)
        case ["user", endpoint, name, out_dir]:
            user(endpoint, name, out_dir)
        case ["role", endpoint, name, user_name]:
            role(endpoint, name, user_name)
        case ["sts", endpoint, name]:
            sts(endpoint, name)
        case ["assumed", endpoint, name]:
            assumed(endpoint, name)
        case ["fanout", n, *cmd] if cmd:
            fanout(int(n), cmd)
        case ["rss", *cmd] if cmd:
            rss(cmd)
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
