"""`stsmfa env` and `stsmfa exec`: the session as variables in every format
(sh, fish, PowerShell, dotenv, JSON), loaded by real shells; dotenv that sh,
dash, bash, python-dotenv and docker's rule read alike, and safe to source
even when STS sends hostile values (issue 5); `exec` runs the command in
stsmfa's place (issue 9) with the session in its environment, passing on its
exit code and each signal once."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from assertions import assert_error, error_lines
from fake_endpoints import FakeEndpoint, session_token_response
from fake_programs import FAKE_BIN
from harness import ENV_VARS, VENV_BIN, missing, parse_rfc3339_z


def session_env(cred: dict, profile: str = "work", region: str | None = "us-east-1") -> dict:
    want = {
        "AWS_ACCESS_KEY_ID": cred["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": cred["SecretAccessKey"],
        "AWS_SESSION_TOKEN": cred["SessionToken"],
        "AWS_CREDENTIAL_EXPIRATION": cred["Expiration"],
        "STSMFA_PROFILE": profile,
    }
    if region:  # the SDKs and CLI v2 read AWS_REGION, the CLI v1 AWS_DEFAULT_REGION
        want["AWS_REGION"] = region
        want["AWS_DEFAULT_REGION"] = region
    return want


# ---------------------------------------------------------------------------
# env


@pytest.mark.parametrize("shell", ["bash", "zsh", "sh"])
def test_env_eval_in_posix_shells(home, user, shell, aws_cli):
    if not shutil.which(shell, path=home.env["PATH"]):
        missing(f"{shell} not installed")
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    cp = home.sh(
        r"""
        export AWS_PROFILE=work-mfa AWS_SECURITY_TOKEN=stale
        out=$(stsmfa env work) || exit 90
        printf '%s\n' "$out" > /dev/null
        eval "$out" || exit 91
        [ -z "${AWS_PROFILE+x}" ] || { echo "AWS_PROFILE still set" >&2; exit 92; }
        [ -z "${AWS_SECURITY_TOKEN+x}" ] || { echo "AWS_SECURITY_TOKEN still set" >&2; exit 93; }
        [ "$STSMFA_PROFILE" = work ] || exit 94
        [ "$AWS_REGION" = us-east-1 ] || { echo "AWS_REGION=$AWS_REGION" >&2; exit 95; }
        aws iam list-users --output json > /dev/null || exit 96
        aws sts get-caller-identity --output json
        """,
        shell=shell,
    )
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    assert json.loads(cp.stdout)["Arn"] == user.arn


def test_env_sh_output_passes_sh_n(home, user):
    home.add_source_profile("work", user)
    out = home.run("env", "work")
    assert out.returncode == 0, out.stderr
    chk = subprocess.run(["sh", "-n"], input=out.stdout, capture_output=True, text=True)
    assert chk.returncode == 0, chk.stderr


def test_env_fish(home, user, fish, aws_cli):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    out = home.run("env", "work", "--format", "fish")
    assert out.returncode == 0, out.stderr
    chk = subprocess.run([fish, "-n"], input=out.stdout, capture_output=True, text=True)
    assert chk.returncode == 0, f"fish -n: {chk.stderr}\n"
    cp = home.sh(
        """
        set -gx AWS_PROFILE work-mfa
        stsmfa env work --format fish | source
        test $pipestatus[1] -eq 0; or exit 90
        set -q AWS_PROFILE; and exit 91
        test "$STSMFA_PROFILE" = work; or exit 92
        aws iam list-users --output json > /dev/null; or exit 93
        aws sts get-caller-identity --output json
        """,
        shell="fish",
    )
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    assert json.loads(cp.stdout)["Arn"] == user.arn


def parse_env_output(fmt: str, text: str) -> tuple[dict, set]:
    """(assigned, unset) variables of an `env --format FMT` output, parsed
    strictly enough to catch quoting mistakes."""
    assigned: dict[str, str] = {}
    unset: set[str] = set()
    if fmt == "json":
        data = json.loads(text)
        assert isinstance(data, dict), text
        for k, v in data.items():
            if v is None:
                unset.add(k)
            else:
                assert isinstance(v, str), (k, v)
                assigned[k] = v
        return assigned, unset
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if fmt == "dotenv":
            m = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
            assert m, f"not a dotenv line: {line!r}"
            v = m.group(2)
            if v[:1] in ("'", '"'):
                assert v[-1:] == v[:1] and len(v) >= 2, f"unbalanced quotes: {line!r}"
                v = v[1:-1]
            assigned[m.group(1)] = v
        elif fmt == "powershell":
            m = re.fullmatch(r"\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'((?:[^']|'')*)'\s*;?", s)
            if m:
                assigned[m.group(1)] = m.group(2).replace("''", "'")
                continue
            m = re.fullmatch(r'\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"`$]*)"\s*;?', s)
            if m:
                assigned[m.group(1)] = m.group(2)
                continue
            m = re.fullmatch(
                r"(?i:Remove-Item)\s+(?:-Path\s+)?(?:-LiteralPath\s+)?'?(?i:env):\\?([A-Za-z_][A-Za-z0-9_]*)'?.*", s
            ) or re.fullmatch(r"\$(?i:env):([A-Za-z_][A-Za-z0-9_]*)\s*=\s*\$null\s*;?", s)
            assert m, f"not a PowerShell assignment or removal: {line!r}"
            unset.add(m.group(1))
        else:
            raise AssertionError(fmt)
    return assigned, unset


@pytest.mark.parametrize("fmt", ["sh", "fish", "powershell", "dotenv", "json"])
def test_env_every_format_carries_the_session(home, user, fmt):
    home.add_source_profile("work", user)
    cred = home.credential_process("work")
    out = home.run("env", "work", "--format", fmt)
    assert out.returncode == 0, out.stderr
    want = session_env(cred)
    if fmt in ("sh", "fish"):
        shell = "sh" if fmt == "sh" else "fish"
        if not shutil.which(shell, path=home.env["PATH"]):
            missing(f"{shell} not installed")
        n = subprocess.run([shell, "-n"], input=out.stdout, capture_output=True, text=True)
        assert n.returncode == 0, f"{shell} -n: {n.stderr}"
        names = " ".join(f'"${k}"' for k in want)
        if fmt == "sh":
            script = out.stdout + f"\nprintf '%s\\n' {names}\n[ -z \"${{AWS_PROFILE+x}}\" ] || echo PROFILE-SET\n"
        else:
            script = out.stdout + f"\nprintf '%s\\n' {names}\nset -q AWS_PROFILE; and echo PROFILE-SET\ntrue\n"
        got = home.sh(script, shell=shell, env={"AWS_PROFILE": "stale"})
        assert got.returncode == 0, got.stderr
        lines = got.stdout.splitlines()
        assert "PROFILE-SET" not in lines
        assert lines[: len(want)] == list(want.values())
        return
    if fmt == "powershell":
        pwsh = shutil.which("pwsh")  # optional: the strict parse below always runs
        if pwsh:
            names = ";".join(f"Write-Output $Env:{k}" for k in want)
            got = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", out.stdout + "\n" + names],
                                 capture_output=True, text=True, env=home.env)
            assert got.returncode == 0, got.stderr
            assert got.stdout.splitlines() == list(want.values())
    assigned, unset = parse_env_output(fmt, out.stdout)
    for k, v in want.items():
        assert assigned.get(k) == v, f"{k}: {assigned.get(k)!r} != {v!r}"
    if fmt == "powershell":
        assert {"AWS_PROFILE", "AWS_SECURITY_TOKEN"} <= unset, unset


# ---------------------------------------------------------------------------
# env --format dotenv


SH_READERS = ("sh", "dash", "bash")


def docker_env_file(text: str) -> dict[str, str]:
    """docker's `--env-file` reader (docker cannot be installed here, so this
    follows its rule): each line is KEY=VALUE taken literally, no quotes and no
    escapes; blank lines and lines starting with `#` are skipped."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"docker reads {line!r} as a variable taken from its own environment"
        out[key.lstrip()] = value
    return out


def python_dotenv(home, path: Path) -> dict[str, str]:
    cp = home._run([str(VENV_BIN / "python"), "-c",
                    "import json, sys; from dotenv import dotenv_values; "
                    "print(json.dumps(dotenv_values(sys.argv[1])))", str(path)])
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def sourced(home, shell: str, directory: Path) -> dict[str, str]:
    """What `set -a; . ./.env` exports, in a clean environment."""
    exe = shutil.which(shell)
    assert exe, f"{shell} not installed"
    script = 'set -a; . ./.env; exec "$0" -c "import json, os; print(json.dumps(dict(os.environ)))"'
    cp = subprocess.run([exe, "-c", script, shutil.which("python3")], cwd=directory,
                        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, f"{shell}: {cp.stderr}"
    got = json.loads(cp.stdout)
    return {k: v for k, v in got.items() if k.startswith(("AWS_", "STSMFA_"))}


def test_dotenv_real_values_are_bare_and_read_alike_by_every_reader(home, user, tmp_path):
    home.add_source_profile("work", user, region="eu-west-1")
    cred = home.credential_process("work")
    cp = home.run("env", "work", "--format", "dotenv")
    assert cp.returncode == 0, cp.stderr
    want = {
        "AWS_ACCESS_KEY_ID": cred["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": cred["SecretAccessKey"],
        "AWS_SESSION_TOKEN": cred["SessionToken"],
        "AWS_CREDENTIAL_EXPIRATION": cred["Expiration"],
        "STSMFA_EXPIRATION_EPOCH": str(int(parse_rfc3339_z(cred["Expiration"]))),
        "STSMFA_PROFILE": "work",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert cp.stdout == "".join(f"{k}={v}\n" for k, v in want.items()), cp.stdout
    d = tmp_path / "project"
    d.mkdir()
    (d / ".env").write_text(cp.stdout)
    assert docker_env_file(cp.stdout) == want
    assert python_dotenv(home, d / ".env") == want
    for shell in SH_READERS:
        assert sourced(home, shell, d) == want, shell


def hostile_session(home, user, token: str) -> None:
    """Caches a session whose token is `token`, as a rogue STS answered it."""
    home.add_source_profile("work", user)
    with FakeEndpoint(lambda n, a: (200, session_token_response(token))) as fake:
        cp = home.run("credential-process", "work", env={"AWS_ENDPOINT_URL": fake.endpoint}, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["SessionToken"] == token


# Runs commands in sh (creates files named pwned*) if not quoted right; has no
# space, `$`, `'` or `\`, so it is written single-quoted.
QUOTABLE = 'FwoG`>pwned1`"(>pwned2)";>pwned3|>pwned4&>pwned5#x<y*?~!{a,b}'


def test_dotenv_hostile_value_is_single_quoted_and_never_runs(home, user, tmp_path):
    hostile_session(home, user, QUOTABLE)
    cp = home.run("env", "work", "--format", "dotenv")
    assert cp.returncode == 0, cp.stderr
    assert f"AWS_SESSION_TOKEN='{QUOTABLE}'\n" in cp.stdout, cp.stdout
    d = tmp_path / "project"
    d.mkdir()
    (d / ".env").write_text(cp.stdout)
    for shell in SH_READERS:
        got = sourced(home, shell, d)
        assert got["AWS_SESSION_TOKEN"] == QUOTABLE, shell
        assert sorted(os.listdir(d)) == [".env"], f"{shell} ran part of the value: {os.listdir(d)}"
    assert python_dotenv(home, d / ".env")["AWS_SESSION_TOKEN"] == QUOTABLE
    # docker takes the quotes too (nothing can be written that all read alike),
    # but still one variable per line.
    docker = docker_env_file(cp.stdout)
    assert docker["AWS_SESSION_TOKEN"] == f"'{QUOTABLE}'"
    assert set(docker) == set(ENV_VARS) | {"STSMFA_EXPIRATION_EPOCH", "AWS_REGION", "AWS_DEFAULT_REGION"}


@pytest.mark.parametrize("token", ["tok$(>pwned6)", "tok'$(>pwned7)'", "tok\\`>pwned8`", "tok${HOME}"])
def test_dotenv_refuses_a_value_no_reader_agrees_on(home, user, tmp_path, token):
    hostile_session(home, user, token)
    cp = home.run("env", "work", "--format", "dotenv")
    assert cp.returncode == 1, cp.stdout
    assert cp.stdout == "", "a partial dotenv file was printed"
    assert len(error_lines(cp.stderr)) == 1 and "AWS_SESSION_TOKEN" in cp.stderr, cp.stderr
    assert "--format sh" in cp.stderr
    assert token not in cp.stderr, "the secret value was printed"
    # The sh format still carries it, literally.
    sh = home.run("env", "work")
    assert sh.returncode == 0, sh.stderr
    got = home.sh(sh.stdout + 'printf %s "$AWS_SESSION_TOKEN"', shell="sh")
    assert got.stdout == token
    assert not list(home.root.glob("pwned*"))


# ---------------------------------------------------------------------------
# exec


def test_exec_passes_exit_code_and_signals(home, user):
    home.add_source_profile("work", user)
    ok = home.run("exec", "work", "--", "sh", "-c", "exit 7")
    assert ok.returncode == 7, ok.stderr
    sig = home.run("exec", "work", "--", "sh", "-c", "kill -TERM $$")
    # 143 from stsmfa, or death by the same signal when it exec()s the child
    assert sig.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), sig.stderr
    in_shell = home.sh("stsmfa exec work -- sh -c 'kill -TERM $$'; echo \"rc=$?\"")
    assert in_shell.stdout.strip().endswith("rc=143"), in_shell


def test_exec_child_sees_the_session(home, user, aws_cli):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    cred = home.credential_process("work")
    cp = home.run(
        "exec", "work", "--", "sh", "-c",
        'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" '
        '"$AWS_CREDENTIAL_EXPIRATION" "$STSMFA_PROFILE" "$AWS_REGION" "$AWS_DEFAULT_REGION" '
        '"${AWS_PROFILE-unset}"',
        env={"AWS_PROFILE": "work-mfa"},
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines() == [*session_env(cred).values(), "unset"]
    lu = home.run("exec", "work", "--", "aws", "iam", "list-users", "--output", "json")
    assert lu.returncode == 0, lu.stderr
    assert "Users" in json.loads(lu.stdout)


def test_exec_forwards_sigterm_to_the_child(home, user):
    home.add_source_profile("work", user)
    home.credential_process("work")  # warm the cache: no code needed below
    p = subprocess.Popen(
        [str(home.bin), "exec", "work", "--", "sh", "-c",
         'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'],
        env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)  # to stsmfa only, not the process group
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert rc == 42, f"exit {rc}: {p.stderr.read()}"


def test_exec_child_gets_a_signal_once(home, user):
    """`timeout` signals its child and then its whole process group: the
    command must count as many SIGINTs under stsmfa as without it (one)."""
    home.add_source_profile("work", user)
    home.credential_process("work")  # warm the cache: no code needed below
    script = FAKE_BIN / "count-sigint"
    py = shutil.which("python3")
    alone = home._run(["timeout", "-s", "INT", "2", py, str(script), "4"], timeout=30)
    assert alone.stdout.split() == ["ready", "1"], alone
    under = home._run(["timeout", "-s", "INT", "2", str(home.bin), "exec", "work", "--", py, str(script), "4"],
                      timeout=30)
    assert under.stdout.split() == ["ready", "1"], f"{under.stdout!r} {under.stderr!r}"
    assert under.returncode == 124, under


def test_exec_becomes_the_command_and_its_shell(home, user):
    home.add_source_profile("work", user)
    home.credential_process("work")
    fake_shell = FAKE_BIN / "fake-shell"
    for argv, env in (
        (["exec", "work", "--", "sh", "-c", 'echo "$$ $AWS_ACCESS_KEY_ID $STSMFA_PROFILE"'], {}),
        (["exec", "work"], {"SHELL": str(fake_shell)}),  # no command: $SHELL
    ):
        p = subprocess.Popen([str(home.bin), *argv], env=home._env(env), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=home.root,
                             start_new_session=True)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        pid, akid, prof = out.split()
        assert int(pid) == p.pid, f"{argv}: the command ran as a child ({pid}), not in stsmfa's place ({p.pid})"
        assert akid.startswith("ASIA") and prof == "work"
    # Its death by a signal is its own, and a missing command a clear error.
    died = home.run("exec", "work", "--", "sh", "-c", "kill -TERM $$")
    assert died.returncode == -signal.SIGTERM, died
    missing = home.run("exec", "work", "--", "definitely-not-a-command-xyz")
    assert_error(missing, hint=True)
    assert re.match(r"stsmfa: error: cannot run 'definitely-not-a-command-xyz'", missing.stderr), missing.stderr
