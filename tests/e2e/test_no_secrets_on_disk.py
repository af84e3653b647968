"""No secret is ever written to a file, stderr, a log or a process argument
(SPEC: the credential store). Runs a whole flow, then looks for the session's
SecretAccessKey and SessionToken (and the long-term secret key) everywhere
stsmfa could have left them. And no core file can hold one: while stsmfa holds
secrets its core file limit is 0 (defect 2 of the attack report), its
children's the user's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def _files(*roots: Path):
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink():
                    yield p


def _hits(needles: dict[str, str], roots, skip: set[Path] = frozenset()) -> list[str]:
    found = []
    for p in _files(*roots):
        if p in skip:
            continue
        try:
            data = p.read_bytes()
        except OSError:
            continue
        for label, n in needles.items():
            if n.encode() in data:
                found.append(f"{label} in {p}")
    return found


@pytest.mark.parametrize("store_name", ["secret-service", "keyutils", "none"])
def test_no_secrets_in_files_stderr_or_arguments(home, user, request, store_name, aws_cli):
    if store_name == "secret-service":
        request.getfixturevalue("secret_service_ok")
    elif store_name == "keyutils":
        request.getfixturevalue("keyutils_ok")
    home.env["STSMFA_STORE"] = store_name
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")

    cp = home.run("credential-process", "work", "-v")
    assert cp.returncode == 0, cp.stderr
    cred = json.loads(cp.stdout)
    secrets = {
        "session SecretAccessKey": cred["SecretAccessKey"],
        "session SessionToken": cred["SessionToken"],
    }
    # the flow: every command, verbose where it has -v
    flow = [
        ("credential-process", "work", "-v"),
        ("env", "work", "-v"),
        ("env", "work", "--format", "json", "-v"),
        ("status", "-v"),
        ("status", "--json", "-v"),
        ("status", "work", "--json"),
    ]
    if store_name == "none":
        flow = [("status", "--json", "-v")]  # every other command would ask a code again
    for args in flow:
        r = home.run(*args)
        assert r.returncode == 0, (args, r.stderr)
    # the process arguments of everything running while exec's child runs
    ps = home.run(
        "exec", "work", "-v", "--", "sh", "-c",
        'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done',
        env={"STSMFA_MFA_CODE": home.code(user)} if store_name == "none" else None,
    )
    assert ps.returncode == 0, ps.stderr
    assert "/proc" in ps.stdout or "sh" in ps.stdout
    for label, s in secrets.items():
        assert s not in ps.stdout, f"{label} in a process argument"
    if store_name != "none":
        lu = home.aws("iam", "list-users", profile="work-mfa")
        assert lu.returncode == 0, lu.stderr
        home.sh('eval "$(stsmfa env work -v)"; stsmfa status -v >/dev/null')
        home.run("clear", "work", "-v")

    # stderr of every run, and the aws CLI's stderr through credential_process
    stderr = home.all_stderr()
    for label, s in {**secrets, "long-term secret key": user.secret_access_key}.items():
        assert s not in stderr, f"{label} on stderr"

    # files: the test HOME (its .aws files hold the long-term key by design,
    # so only session secrets are looked for there), the state dir, TMPDIR,
    # the tools dir, and the outer runtime dir of the run
    roots = [home.home, home.state, home.tmp, home.tools]
    if os.environ.get("XDG_RUNTIME_DIR"):
        roots.append(Path(os.environ["XDG_RUNTIME_DIR"]))
    hits = _hits(secrets, roots)
    assert hits == [], hits
    hits = _hits({"long-term secret key": user.secret_access_key}, roots, skip={home.credentials_path})
    assert hits == [], hits
    # the state dir is for locks and last-code records: nothing secret-shaped
    for p in _files(home.state):
        assert p.stat().st_size < 4096, f"unexpectedly large state file {p}"


# ---------------------------------------------------------------------------
# Core dumps


def core_limits(path) -> tuple[str, str]:
    """(soft, hard) of "Max core file size" in a copy of /proc/PID/limits."""
    for line in path.read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line[len("Max core file size"):].split()[:2]
            return soft, hard
    raise AssertionError(f"no core line in {path}:\n{path.read_text()}")


def test_core_dumps_are_off_while_stsmfa_holds_secrets_and_children_get_the_limit_back(home, user, bed):
    """With `ulimit -c unlimited`, stsmfa-sts (which holds the long-term key
    while its mfa_process runs) has a soft core limit of 0; the mfa_process
    gets the user's unlimited back."""
    parent, child, status = home.tools / "parent.limits", home.tools / "child.limits", home.tools / "parent.status"
    probe = home.tools / "probe.sh"
    log = home.tools / "codes.log"
    probe.write_text(
        f'cat "/proc/$1/limits" > {parent}\n'
        f'cat "/proc/$1/status" > {status}\n'
        f"cat /proc/self/limits > {child}\n"
        f"exec {home.mfa_process(user, log)}\n"
    )
    home.add_source_profile("work", user, mfa_process=f"sh {probe} $PPID")
    cp = home.sh("ulimit -c unlimited && exec stsmfa credential-process work", shell="sh")
    assert cp.returncode == 0, cp.stderr
    assert home.calls(log) == 1
    assert "Name:\tstsmfa-sts" in status.read_text(), status.read_text()
    assert core_limits(parent)[0] == "0", parent.read_text()
    assert core_limits(child) == ("unlimited", "unlimited"), child.read_text()
