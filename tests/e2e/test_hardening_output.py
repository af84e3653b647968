"""Hardening of what stsmfa prints and runs: server text cannot forge lines or
send escape sequences (issue 4), `--format dotenv` is safe to source and reads
the same in sh, python-dotenv and docker (issue 5), completion scripts work
from any binary path and an unrelated COMPLETE variable does nothing (issues 5
and 12), and `exec` becomes the command, so it gets each signal once (issue 9).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from html import escape as xml_escape
from pathlib import Path

import pytest

from assertions import assert_error, error_lines, hint_lines
from fake_endpoints import FakeEndpoint, sts_error_xml
from fake_programs import FAKE_BIN
from harness import ENV_VARS, VENV_BIN

# ---------------------------------------------------------------------------
# Server text on the terminal

# As STS's XML carries them (character references; raw controls are not XML):
# a newline and a forged hint, then CR, erase-line, a window title, colour,
# C1 CSI and DEL.
FORGED = ("User is not allowed&#10;hint: run: curl x | sh&#13;&#27;[2K&#27;]0;owned&#7;"
          "&#27;[31mred&#x9b;2J&#x7f;")
SHOWN = r"User is not allowed\nhint: run: curl x | sh\r\x1b[2K\x1b]0;owned\x07\x1b[31mred\u{9b}2J\x7f"


@pytest.mark.parametrize("verbose", [False, True])
def test_sts_error_text_cannot_forge_a_hint_or_send_escapes(home, user, verbose):
    home.add_source_profile("work", user)
    args = ["-v"] if verbose else []
    with FakeEndpoint(lambda n, a: (403, sts_error_xml("AccessDenied", FORGED))) as fake:
        cp = home.run(*args, "credential-process", "work",
                      env={"AWS_ENDPOINT_URL": fake.endpoint, "STSMFA_TIMEOUT": "20"}, timeout=60)
        assert fake.actions(), "stsmfa never asked the fake STS"
    assert cp.returncode == 1, cp.stderr
    assert cp.stdout == ""
    for c in "\x1b\x07\x9b\x7f\r":
        assert c not in cp.stderr, f"raw {c!r} on stderr: {cp.stderr!r}"
    errors = error_lines(cp.stderr)
    assert len(errors) == 1, cp.stderr
    # The server's text stays on the error line, its controls made visible.
    assert SHOWN in errors[0], errors[0]
    hints = hint_lines(cp.stderr)
    assert len(hints) == 1, f"a forged hint line:\n{cp.stderr}"
    assert "curl" not in hints[0], hints
    for line in cp.stderr.splitlines():
        assert line.startswith(("stsmfa: ", "hint: ")), f"a line stsmfa did not write: {line!r}"


# ---------------------------------------------------------------------------
# dotenv

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


def session_token_response(token: str) -> bytes:
    return (
        '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetSessionTokenResult><Credentials>"
        f"<AccessKeyId>ASIAFAKEFAKEFAKE1234</AccessKeyId>"
        f"<SecretAccessKey>fakeSecretKey/fake+fake=</SecretAccessKey>"
        f"<SessionToken>{xml_escape(token, quote=False)}</SessionToken>"
        "<Expiration>2099-01-01T00:00:00Z</Expiration>"
        "</Credentials></GetSessionTokenResult>"
        "<ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>"
        "</GetSessionTokenResponse>"
    ).encode()


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
    assert set(docker) == set(ENV_VARS) | {"AWS_REGION", "AWS_DEFAULT_REGION"}


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
# Completions


def _profiles(home, make_user) -> set[str]:
    u = make_user()
    home.add_source_profile("work", u)
    home.add_process_profile("work-mfa", "work")
    return {"work", "work-mfa"}


COMPLETE_IN_BASH = r"""
source <("$STSMFA" completions bash) || exit 90
complete -p stsmfa >/dev/null || exit 91
COMP_WORDS=(stsmfa credential-process "")
COMP_CWORD=2
COMP_TYPE=9
COMP_LINE="stsmfa credential-process "
COMP_POINT=${#COMP_LINE}
fn=$(complete -p stsmfa | sed -n 's/.*-F \([^ ]*\).*/\1/p')
"$fn" stsmfa "" credential-process
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.mark.parametrize("dirname", ["my tools", "$(touch pwned)", "it's `touch pwned2`"])
def test_bash_completion_works_from_any_binary_path(home, make_user, tmp_path, dirname):
    want = _profiles(home, make_user)
    d = tmp_path / "bin" / dirname
    d.mkdir(parents=True)
    copy = d / "stsmfa"
    shutil.copy2(home.bin, copy)
    work = tmp_path / "cwd"
    work.mkdir()
    cp = home._run(["bash", "-c", COMPLETE_IN_BASH], env={"STSMFA": str(copy)}, cwd=work)
    assert cp.returncode == 0, cp.stderr
    assert want <= set(cp.stdout.splitlines()), f"{cp.stdout}\n{cp.stderr}"
    script = home._run([str(copy), "completions", "bash"]).stdout
    assert str(copy) in script.replace("'\\''", "'"), script
    assert not list(tmp_path.rglob("pwned*")), "completing ran a command from the binary's path"


def test_completion_script_names_the_binary_when_path_finds_it(home):
    script = home.run("completions", "bash").stdout
    assert "'stsmfa' --" in script, script
    assert str(home.bin) not in script


@pytest.mark.parametrize("value", ["1", "true", "bash"])
def test_a_complete_variable_does_not_hijack_calls(home, user, aws_cli, value):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    plain = home.run("status", "--json")
    assert plain.returncode == 0, plain.stderr
    cp = home.run("status", "--json", env={"COMPLETE": value})
    assert (cp.returncode, cp.stdout) == (0, plain.stdout), cp.stderr
    who = home.aws("sts", "get-caller-identity", profile="work-mfa", env={"COMPLETE": value})
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"].endswith(f":user/{user.name}")


# ---------------------------------------------------------------------------
# exec

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
