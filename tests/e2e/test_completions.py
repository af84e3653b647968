"""Shell completion: the scripts of `stsmfa completions SHELL` are valid and
complete profile names (the STSMFA_COMPLETE protocol, bash's completion
function, fish's `complete -C`), work from any binary path (issue 5), and an
unrelated COMPLETE variable in the environment changes nothing (issue 12)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from harness import missing


COMPLETION_SHELLS = ["bash", "zsh", "fish", "powershell", "elvish"]
CHECKABLE = {"bash", "zsh", "fish"}  # have an `-n` syntax check


def need_shell(name: str) -> str:
    exe = shutil.which(name)
    if not exe:
        missing(f"{name} not installed")
    return exe


# ---------------------------------------------------------------------------
# the scripts


@pytest.mark.parametrize("shell", COMPLETION_SHELLS)
def test_completions_output_is_valid_for_its_shell(home, shell):
    cp = home.run("completions", shell, timeout=30)
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.strip() and "stsmfa" in out
    if shell in CHECKABLE:
        exe = need_shell(shell)
        chk = subprocess.run([exe, "-n"], input=out, capture_output=True, text=True, timeout=30)
        assert chk.returncode == 0, f"{shell} -n: {chk.stderr}"


# ---------------------------------------------------------------------------
# profile names


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


# Sources `$STSMFA completions bash` and asks its function for `stsmfa
# credential-process <TAB>`, as bash does on TAB.
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


def test_bash_completion_function_completes_profiles(home, make_user):
    want = _profiles_home(home, make_user)
    cp = home.sh(COMPLETE_IN_BASH, shell="bash", env={"STSMFA": "stsmfa"})
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
# any binary path, and COMPLETE


def _two_profiles(home, make_user) -> set[str]:
    u = make_user()
    home.add_source_profile("work", u)
    home.add_process_profile("work-mfa", "work")
    return {"work", "work-mfa"}



@pytest.mark.parametrize("dirname", ["my tools", "$(touch pwned)", "it's `touch pwned2`"])
def test_bash_completion_works_from_any_binary_path(home, make_user, tmp_path, dirname):
    want = _two_profiles(home, make_user)
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
