"""Everyday use (issue 5): the shell integration printed by `stsmfa init`, the
completion scripts and dynamic profile completion, an interactive bash that
loads a session with `stsmfa-use` and calls the AWS CLI, the code sources for
when there is no terminal (zenity, kdialog, osascript, ykman, through fake
programs first on PATH), help with examples, usage errors and the man page."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from assertions import assert_error
from fake_programs import fake_program, read_json_lines
from harness import missing, sts_failed, sts_ok
from pty_driver import PtyProcess

COMMANDS = ["credential-process", "env", "exec", "status", "clear", "enroll", "init", "completions"]
INIT_SHELLS = ["bash", "zsh", "fish", "powershell"]
COMPLETION_SHELLS = ["bash", "zsh", "fish", "powershell", "elvish"]
CHECKABLE = {"bash", "zsh", "fish"}  # have an `-n` syntax check


def need_shell(name: str) -> str:
    exe = shutil.which(name)
    if not exe:
        missing(f"{name} not installed")
    return exe


def stsmfa(home, *args: str, env=None) -> subprocess.CompletedProcess:
    cp = home.run(*args, env=env, timeout=30)
    return cp


# ---------------------------------------------------------------------------
# init and completions: syntax


@pytest.mark.parametrize("shell", INIT_SHELLS)
def test_init_output_is_valid_for_its_shell(home, shell):
    cp = stsmfa(home, "init", shell)
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.strip(), "empty init output"
    assert "@STSMFA@" not in out, "placeholder not substituted"
    assert str(home.bin) in out, "the binary's own path is not in the script"
    if shell in CHECKABLE:
        exe = need_shell(shell)
        chk = subprocess.run([exe, "-n"], input=out, capture_output=True, text=True, timeout=30)
        assert chk.returncode == 0, f"{shell} -n: {chk.stderr}"
        assert "stsmfa-use" in out and "stsmfa-drop" in out and "stsmfa_prompt" in out


@pytest.mark.parametrize("shell", COMPLETION_SHELLS)
def test_completions_output_is_valid_for_its_shell(home, shell):
    cp = stsmfa(home, "completions", shell)
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.strip() and "stsmfa" in out
    if shell in CHECKABLE:
        exe = need_shell(shell)
        chk = subprocess.run([exe, "-n"], input=out, capture_output=True, text=True, timeout=30)
        assert chk.returncode == 0, f"{shell} -n: {chk.stderr}"


def test_init_bash_survives_a_path_with_spaces_and_quotes(home, tmp_path):
    odd = tmp_path / "dir with 'quote' $x"
    odd.mkdir()
    link = odd / "stsmfa"
    try:
        os.link(home.bin, link)  # current_exe() names the path it was run by
    except OSError:
        shutil.copy2(home.bin, link)
    cp = home._run([str(link), "init", "bash"], timeout=30)
    assert cp.returncode == 0, cp.stderr
    chk = home.sh(cp.stdout + "\ntype stsmfa-use >/dev/null && declare -f stsmfa-use", shell="bash")
    assert chk.returncode == 0, chk.stderr
    assert "dir with" in chk.stdout


# ---------------------------------------------------------------------------
# dynamic completion of profile names


def _profiles_home(home, make_user):
    u = make_user()
    home.add_source_profile("work", u)
    home.add_process_profile("work-mfa", "work")
    home.set_credentials("creds-only", {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "x"})
    home.set_config("default", {"region": "eu-west-1"})
    return {"work", "work-mfa", "creds-only", "default"}


@pytest.mark.parametrize("command", ["credential-process", "env", "exec", "clear", "status", "enroll"])
def test_complete_protocol_lists_profile_names(home, make_user, command):
    want = _profiles_home(home, make_user)
    cp = home.run("--", "stsmfa", command, "", env={
        "STSMFA_COMPLETE": "bash", "_CLAP_COMPLETE_INDEX": "2", "_CLAP_IFS": "\n",
    }, timeout=30)
    assert cp.returncode == 0, cp.stderr
    got = set(cp.stdout.split("\n"))
    assert want <= got, f"missing {want - got} in {sorted(got)}"
    partial = home.run("--", "stsmfa", command, "work-", env={
        "STSMFA_COMPLETE": "bash", "_CLAP_COMPLETE_INDEX": "2", "_CLAP_IFS": "\n",
    }, timeout=30)
    assert partial.stdout.split("\n") == ["work-mfa"], partial.stdout


def test_bash_completion_function_completes_profiles(home, make_user):
    want = _profiles_home(home, make_user)
    script = r"""
source <(stsmfa completions bash) || exit 90
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
    cp = home.sh(script, shell="bash")
    assert cp.returncode == 0, cp.stderr
    got = set(cp.stdout.splitlines())
    assert want <= got, f"missing {want - got} in {sorted(got)}"


def test_fish_completion_completes_profiles(home, make_user, fish):
    want = _profiles_home(home, make_user)
    cp = home.sh("stsmfa completions fish | source; complete -C 'stsmfa env '", shell="fish")
    assert cp.returncode == 0, cp.stderr
    got = {line.split("\t")[0] for line in cp.stdout.splitlines()}
    assert want <= got, f"missing {want - got} in {sorted(got)}"


# ---------------------------------------------------------------------------
# an interactive bash


def test_interactive_bash_stsmfa_use_then_aws_cli(home, user, bed, aws_cli):
    home.add_source_profile("work", user, mfa_process=False)  # the code is typed at the prompt
    env = home._env({"TERM": "dumb", "PS1": "PS1> ", "SHELL": shutil.which("bash") or "/bin/bash"})
    term = PtyProcess(["bash", "--norc", "--noprofile", "-i"], env=env, cwd=home.root)

    def run(cmd: str, tag: str, timeout: float = 60) -> str:
        start = len(term.text)
        term.sendline(f'{cmd}; echo "RC=$?:{tag}"')
        m = term.expect(rf"RC=(\d+):{tag}", timeout=timeout)
        assert m.group(1) == "0", f"`{cmd}` failed:\n{term.text[start:]}"
        return term.text[start:m.start()]

    try:
        term.expect(r"PS1> ", timeout=30)
        run('eval "$(stsmfa init bash)"', "init")
        term.sendline('stsmfa-use work; echo "RC=$?:use"')
        prompt = term.expect(r"MFA code for profile work \(([^)]*)\)", timeout=60)
        assert prompt.group(1) == user.serial
        term.sendline(home.code(user))
        m = term.expect(r"RC=(\d+):use", timeout=60)
        assert m.group(1) == "0", term.text
        assert run('test "${AWS_ACCESS_KEY_ID:0:4}" = ASIA && test -n "$AWS_SESSION_TOKEN"', "vars") is not None
        who = run("aws sts get-caller-identity --output json", "who")
        assert user.arn in who, who
        users = run("aws iam list-users --output json", "users")
        assert '"Users"' in users, users
        seg = run('echo "SEG=[$(stsmfa_prompt)]"', "seg")
        m = re.search(r"SEG=\[([^\]$]*)\]", seg)  # not the echoed command line
        assert m and m.group(1).startswith("aws:work"), seg
        assert re.fullmatch(r"aws:work \d+h\d\dm", m.group(1)), m.group(1)
        run("stsmfa-drop", "drop")
        seg = run('echo "SEG=[$(stsmfa_prompt)]"', "seg2")
        assert "SEG=[]" in seg, seg
        term.sendline("exit 0")
        assert term.wait(20) == 0
    finally:
        term.close()
    assert sts_ok(bed, user) == 1 and sts_failed(bed, user) == 0


# ---------------------------------------------------------------------------
# code sources without a terminal: fake programs first on PATH


def _fake_env(home, fakes, extra=None) -> dict:
    env = {"PATH": f"{fakes}:{home.env['PATH']}", "DISPLAY": None, "WAYLAND_DISPLAY": None}
    env.update(extra or {})
    return env


@pytest.mark.parametrize(
    "program,how",
    [
        ("zenity", "auto-DISPLAY"),
        ("kdialog", "auto-WAYLAND_DISPLAY"),
        ("kdialog", "STSMFA_PROMPT"),
        ("osascript", "--prompt"),
        ("zenity", "stsmfa_prompt"),
    ],
)
def test_dialog_prompt_through_a_fake_program(home, user, bed, program, how):
    fakes = home.root / "fakes"
    log = home.tools / f"{program}.log"
    fake = fake_program(fakes, program, home._seed_file(user), log)
    extra_cfg = {"stsmfa_prompt": program} if how == "stsmfa_prompt" else {}
    home.add_source_profile("work", user, mfa_process=False, extra=extra_cfg)
    env = _fake_env(home, fakes, fake)
    args = ["credential-process", "work"]
    if how == "auto-DISPLAY":
        env["DISPLAY"] = ":99"
    elif how == "auto-WAYLAND_DISPLAY":
        env["WAYLAND_DISPLAY"] = "wayland-9"
    elif how == "STSMFA_PROMPT":
        env.update(STSMFA_PROMPT=program, DISPLAY=":99")
    elif how == "--prompt":
        args.append("--prompt=" + program)
    else:
        env["DISPLAY"] = ":99"

    cp = home.run(*args, env=env, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["AccessKeyId"].startswith("ASIA")
    calls = read_json_lines(log)
    assert len(calls) == 1, calls
    argv = calls[0]["argv"]
    text = " ".join(argv)
    assert "work" in text and user.serial in text, f"the dialog does not show the profile and serial: {argv}"
    if program == "zenity":
        assert argv[:4] == ["--entry", "--title", "stsmfa", "--text"], argv
    elif program == "kdialog":
        assert argv[:3] == ["--title", "stsmfa", "--inputbox"], argv
    else:
        assert argv[0] == "-e" and "display dialog" in argv[1], argv
    assert sts_ok(bed, user) == 1


@pytest.mark.parametrize("account", ["alice@example", None])
def test_ykman_prompt_through_a_fake_program(home, user, bed, account):
    fakes = home.root / "fakes"
    log = home.tools / "ykman.log"
    fake = fake_program(fakes, "ykman", home._seed_file(user), log, output="AWS:alice  {code}")
    cfg = {"stsmfa_prompt": "ykman"}
    if account:
        cfg["stsmfa_ykman_account"] = account
    home.add_source_profile("work", user, mfa_process=False, extra=cfg)
    cp = home.run("credential-process", "work", env=_fake_env(home, fakes, fake), timeout=60)
    assert cp.returncode == 0, cp.stderr
    calls = read_json_lines(log)
    assert [c["argv"] for c in calls] == [["oath", "accounts", "code", "-s", account or user.serial]]
    assert sts_ok(bed, user) == 1


def test_no_dialog_without_a_display_even_when_installed(home, user, bed):
    fakes = home.root / "fakes"
    log = home.tools / "zenity.log"
    fake = fake_program(fakes, "zenity", home._seed_file(user), log)
    home.add_source_profile("work", user, mfa_process=False)
    cp = home.run("credential-process", "work", env=_fake_env(home, fakes, fake), timeout=30)
    assert cp.returncode == 1, cp.stderr
    for way in ("--mfa-code", "STSMFA_MFA_CODE", "mfa_process"):
        assert way in cp.stderr, cp.stderr
    assert read_json_lines(log) == [], "a dialog was started with no display"
    assert sts_ok(bed, user) == 0


def test_chosen_dialog_that_is_not_installed_is_a_clear_error(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    cp = home.run("credential-process", "work", "--prompt", "kdialog",
                  env={"DISPLAY": ":99", "PATH": home.env["PATH"]}, timeout=30)
    assert_error(cp, "kdialog")
    assert sts_ok(bed, user) == 0


def test_dialog_cancelled_is_a_clear_error(home, user, bed):
    fakes = home.root / "fakes"
    log = home.tools / "zenity.log"
    fake = fake_program(fakes, "zenity", home._seed_file(user), log, output="", exit_code=1)
    home.add_source_profile("work", user, mfa_process=False)
    cp = home.run("credential-process", "work", env=_fake_env(home, fakes, {**fake, "DISPLAY": ":99"}), timeout=30)
    assert_error(cp)
    assert len(read_json_lines(log)) == 1
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


# ---------------------------------------------------------------------------
# help, usage errors, man page


def test_top_level_help_lists_every_command_with_one_line(home):
    cp = stsmfa(home, "--help")
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
    cp = stsmfa(home, command, "--help")
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
    cp = stsmfa(home, *args)
    assert cp.returncode == 2, f"exit {cp.returncode}: {cp.stderr}"
    assert cp.stdout == ""
    assert "error" in cp.stderr.lower(), cp.stderr


def test_man_page_is_roff_and_renders(home):
    cp = stsmfa(home, "man")
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
