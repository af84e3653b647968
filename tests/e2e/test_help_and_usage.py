"""Help, usage errors and the man page: `--help` lists every command with one
line, each command's help has an example that runs it, bad usage exits 2, and
`stsmfa man` is roff that renders."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import missing


COMMANDS = ["credential-process", "env", "exec", "status", "clear", "enroll", "init", "completions"]


def test_top_level_help_lists_every_command_with_one_line(home):
    cp = home.run("--help", timeout=30)
    assert cp.returncode == 0, cp.stderr
    section = cp.stdout.split("Commands:", 1)
    assert len(section) == 2, cp.stdout
    listed = {}
    for line in section[1].splitlines()[1:]:
        if not line.strip():
            break
        m = re.match(r"^\s+(\S+)\s{2,}(\S.*)$", line)
        if m:
            listed[m.group(1)] = m.group(2)
    missing_cmds = [c for c in COMMANDS if c not in listed]
    assert not missing_cmds, f"not listed: {missing_cmds}\n{cp.stdout}"
    assert all(len(listed[c]) > 10 for c in COMMANDS), listed
    assert "Example" in cp.stdout


@pytest.mark.parametrize("command", COMMANDS + ["man"])
def test_every_command_help_has_a_real_example(home, command):
    cp = home.run(command, "--help", timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert "Example" in cp.stdout, cp.stdout
    after = cp.stdout.split("Example", 1)[1]
    assert f"stsmfa {command}" in after, f"the example does not run `stsmfa {command}`:\n{after}"


@pytest.mark.parametrize(
    "args",
    [["--no-such-flag"], ["credential-process", "--no-such-flag"], ["env", "--format", "tcsh"],
     ["no-such-command"], ["init", "tcsh"], ["completions"], ["clear", "work", "--all", "--bogus"]],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_exit_2(home, args):
    cp = home.run(*args, timeout=30)
    assert cp.returncode == 2, f"exit {cp.returncode}: {cp.stderr}"
    assert cp.stdout == ""
    assert "error" in cp.stderr.lower(), cp.stderr


def test_man_page_is_roff_and_renders(home):
    cp = home.run("man", timeout=30)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines and lines[0].startswith("."), lines[:3]
    assert any(ln.startswith(".TH stsmfa") or ln.startswith('.TH "stsmfa"') for ln in lines[:10]), lines[:10]
    assert ".SH NAME" in cp.stdout and ".SH SYNOPSIS" in cp.stdout
    nroff = shutil.which("nroff") or shutil.which("groff")
    if not nroff:
        missing("nroff/groff not installed (apt-get install groff-base)")
    argv = [nroff, "-man", "-Tascii"] if nroff.endswith("nroff") else [nroff, "-man", "-Tascii"]
    out = subprocess.run(argv, input=cp.stdout, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    plain = re.sub(r".\x08", "", out.stdout)
    for c in COMMANDS:
        assert c in plain, f"{c} not in the rendered man page"
