"""Many processes at once: start a crowd of commands together and collect what
each did.

Stdlib only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any, Mapping


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
