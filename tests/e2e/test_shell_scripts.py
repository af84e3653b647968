"""Tests of the shell integration in shell/ (what `stsmfa init SHELL` prints).

Mostly standalone: the scripts are read straight from shell/, their @STSMFA@ placeholder
is replaced by a fake stsmfa (a small sh script written here), and real bash, zsh and
fish run them. A missing shell skips its tests, except under CI=true where it fails them.
PowerShell is only checked statically: no pwsh is expected on the test machines.
The last tests run the real stsmfa against the MFA test bed: what it exports for the
scripts (STSMFA_EXPIRATION_EPOCH), its `init` output (valid for each shell, from any
binary path) loaded in real shells, and an interactive bash under a terminal that
types the code at the prompt, then calls the AWS CLI with the session.
"""

import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import parse_rfc3339_z, sts_failed, sts_ok
from pty_driver import PtyProcess

ROOT = Path(__file__).resolve().parents[2]
SHELL_DIR = ROOT / "shell"
SHELLS = ["bash", "zsh", "fish"]
FILES = {"bash": "stsmfa.bash", "zsh": "stsmfa.zsh", "fish": "stsmfa.fish", "powershell": "stsmfa.ps1"}

SESSION_VARS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CREDENTIAL_EXPIRATION", "STSMFA_EXPIRATION_EPOCH", "STSMFA_PROFILE"]
ALL_VARS = SESSION_VARS + ["AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"]

KEY_ID = "ASIAFAKEKEYID0000001"
# A secret that breaks sloppy quoting: quotes, $, backquotes, backslash, spaces.
SECRET = "fake/Secret+Key='x' \"y\" $HOME `id` \\n end"
TOKEN = "FwoGZXIvYXdzEFAKE//session+token=="


def epoch(delta: dt.timedelta) -> int:
    """Unix seconds `delta` from now: a session's expiry as STSMFA_EXPIRATION_EPOCH has it."""
    return int(time.time() + delta.total_seconds())


def rfc3339(delta: dt.timedelta) -> str:
    return rfc3339_of(epoch(delta))


def rfc3339_of(secs: int) -> str:
    return dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sh_quote(v: str) -> str:
    return "'" + v.replace("'", "'\\''") + "'"


def fish_quote(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def need(shell: str) -> str:
    exe = shutil.which(shell)
    if exe:
        return exe
    reason = f"{shell} is not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true every shell integration must be tested")
    pytest.skip(reason)


def session(profile: str, expires: int, region: bool) -> dict:
    values = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
              "AWS_SESSION_TOKEN": TOKEN, "AWS_CREDENTIAL_EXPIRATION": rfc3339_of(expires),
              "STSMFA_EXPIRATION_EPOCH": str(expires), "STSMFA_PROFILE": profile}
    if region:
        values.update(AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")
    return values


def env_output(fmt: str, values: dict, style: str = "usual") -> str:
    """What `stsmfa env --format FMT` prints; style 'plain' is a less usual but valid form."""
    lines = []
    for name, value in values.items():
        if fmt == "sh":
            if style == "plain":
                lines.append(f"{name}={sh_quote(value)}; export {name}")
            else:
                lines.append(f"export {name}={sh_quote(value)}")
        else:
            scope = "-x" if style == "plain" else "-gx"
            lines.append(f"set {scope} {name} {fish_quote(value)}")
    for name in ("AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        lines.append(f"unset {name}" if fmt == "sh" else f"set -e {name}")
    return "\n".join(lines) + "\n"


def make_fake(tmp_path: Path, expires: int) -> Path:
    """A fake stsmfa for `env [PROFILE] [OPTIONS] --format sh|fish`.

    Profiles: work (no region), eu (with region), plain (same as work in another
    valid syntax), bad (fails), half (prints a line to stdout, then fails).
    Each call's arguments are appended to calls.log next to it.
    """
    bindir = tmp_path / "fake bin"  # a space in the path tests the quoting of @STSMFA@
    bindir.mkdir()
    branches = []
    for fmt in ("sh", "fish"):
        for profile, region, style in (("work", False, "usual"), ("eu", True, "usual"),
                                       ("plain", False, "plain")):
            text = env_output(fmt, session(profile, expires, region), style)
            branches.append(f"{profile}:{fmt})\n    cat <<'END_OF_OUTPUT'\n{text}END_OF_OUTPUT\n    ;;")
    script = f"""#!/bin/sh
printf '%s\\n' "$*" >> {sh_quote(str(bindir / 'calls.log'))}
[ "$1" = env ] || {{ echo "fake stsmfa: unexpected command: $1" >&2; exit 2; }}
shift
profile=${{AWS_PROFILE:-default}} format=sh
while [ $# -gt 0 ]; do
    case $1 in
        --format) format=$2; shift ;;
        -*) ;;
        *) profile=$1 ;;
    esac
    shift
done
case $profile:$format in
half:*)
    echo "export AWS_ACCESS_KEY_ID='ASIAHALF'"
    echo "stsmfa: error: STS refused the code for half" >&2
    exit 1 ;;
{chr(10).join(branches)}
*)
    echo "stsmfa: error: no profile $profile in the AWS config files" >&2
    exit 1 ;;
esac
"""
    fake = bindir / "stsmfa"
    fake.write_text(script)
    fake.chmod(0o755)
    return fake


def integration(shell: str, fake: Path) -> str:
    """The script as `stsmfa init SHELL` prints it, with the fake as the binary."""
    text = (SHELL_DIR / FILES[shell]).read_text()
    quote = {"bash": sh_quote, "zsh": sh_quote, "fish": fish_quote,
             "powershell": lambda p: "'" + p.replace("'", "''") + "'"}[shell]
    return text.replace("@STSMFA@", quote(str(fake)))


class Shell:
    """Runs snippets in one shell with the integration loaded, in an isolated HOME."""

    def __init__(self, shell: str, tmp_path: Path, expires: int):
        self.shell = shell
        self.exe = need(shell)
        self.tmp = tmp_path
        self.fake = make_fake(tmp_path, expires)
        self.script = tmp_path / f"stsmfa-init.{shell}"
        self.script.write_text(integration(shell, self.fake))
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.dumps = 0
        # `$?` / `$status`, and how to leave nothing on PATH (no process can start).
        self.rc = "$status" if shell == "fish" else "$?"
        self.no_path = "set -gx PATH /nonexistent" if shell == "fish" else "PATH=/nonexistent; hash -r"

    def dump(self) -> tuple:
        """A snippet that saves the exported environment, and the file it saves it in."""
        self.dumps += 1
        path = self.tmp / f"env.{self.dumps}"
        return f"env -0 > {sh_quote(str(path))}", path

    def run(self, body: str, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                    "LANG": "C.UTF-8", "TERM": "dumb", "XDG_CONFIG_HOME": str(self.home / ".config"),
                    "XDG_DATA_HOME": str(self.home / ".local/share")}
        full_env.update(env or {})
        argv = {"bash": [self.exe, "--norc", "--noprofile"], "zsh": [self.exe, "-f"],
                "fish": [self.exe, "--no-config"]}[self.shell]
        driver = self.tmp / f"driver.{self.shell}"
        driver.write_text(f"source {sh_quote(str(self.script))}\n{body}\n")
        return subprocess.run(argv + [str(driver)], env=full_env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def calls(self) -> list:
        log = self.fake.parent / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


def read_env(path: Path) -> dict:
    out = {}
    for item in path.read_bytes().split(b"\0"):
        if item:
            name, _, value = item.decode().partition("=")
            out[name] = value
    out.pop("_", None)
    return out


def prompts(stdout: str) -> list:
    """The segments printed between the `[` and `]` the snippets put around them."""
    return re.findall(r"^\[(.*)\]$", stdout, re.M)


PROMPT = "printf '['; stsmfa_prompt; printf ']\\n'"
FAR = dt.timedelta(hours=11)


# --- the files themselves ---------------------------------------------------------

@pytest.mark.parametrize("shell", list(FILES))
def test_file_defines_the_functions(shell):
    text = (SHELL_DIR / FILES[shell]).read_text()
    assert "@STSMFA@" in text, "the binary's path must come from the @STSMFA@ placeholder"
    assert f"stsmfa init {shell}" in text, "the header says how to load the file"
    fmt = {"bash": "sh", "zsh": "sh", "fish": "fish", "powershell": "powershell"}[shell]
    assert f"--format {fmt}" in text
    if shell == "powershell":
        for name in ("stsmfa-use", "stsmfa-drop", "Get-StsmfaPrompt"):
            assert re.search(rf"^function {name} \{{", text, re.M), name
        assert "& @STSMFA@ env @args" in text
    else:
        for name in ("stsmfa-use", "stsmfa-drop", "stsmfa_prompt"):
            pattern = rf"^function {name}\b" if shell == "fish" else rf"^{name}\(\) \{{"
            assert re.search(pattern, text, re.M), name
    assert text.startswith("#") and len(text.splitlines()) < 150, "short, with a header comment"


def function_text(shell: str, text: str, name: str) -> str:
    """The definition of function `name` in a script, up to its closing line."""
    start = {"fish": rf"^function {name}\b", "powershell": rf"^function {name} \{{"}.get(
        shell, rf"^{name}\(\) \{{")
    m = re.search(rf"{start}.*?{'^end$' if shell == 'fish' else '^}$'}", text, re.M | re.S)
    assert m, f"no function {name}"
    return m.group(0)


@pytest.mark.parametrize("shell", list(FILES))
def test_expiry_comes_from_the_epoch_variable(shell):
    # PowerShell's only check of this (no pwsh here); for the others a guard against an
    # RFC 3339 parser coming back.
    text = (SHELL_DIR / FILES[shell]).read_text()
    prompt = function_text(shell, text, "Get-StsmfaPrompt" if shell == "powershell" else "stsmfa_prompt")
    epoch_var = "$env:STSMFA_EXPIRATION_EPOCH" if shell == "powershell" else "STSMFA_EXPIRATION_EPOCH"
    assert epoch_var in prompt
    assert "AWS_CREDENTIAL_EXPIRATION" not in prompt, "the prompt reads no RFC 3339 time"
    assert "STSMFA_EXPIRATION_EPOCH" in function_text(shell, text, "stsmfa-drop")
    for parser in ("_stsmfa_expiry", "719468", "146097", "DateTimeOffset]::TryParse",
                   "DateTimeOffset]::Parse", "TimeZone"):
        assert parser not in text, parser


@pytest.mark.parametrize("shell", SHELLS)
def test_syntax(shell, tmp_path):
    exe = need(shell)
    fake = make_fake(tmp_path, epoch(FAR))
    script = tmp_path / f"init.{shell}"
    script.write_text(integration(shell, fake))
    assert "@STSMFA@" not in script.read_text()
    res = subprocess.run([exe, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""


@pytest.mark.parametrize("fmt", ["sh", "fish"])
def test_fake_output_is_valid(fmt):
    # Guards the fake itself: its output must be what the spec asks of stsmfa's.
    exe = need("sh" if fmt == "sh" else "fish")
    text = env_output(fmt, session("eu", epoch(FAR), True))
    res = subprocess.run([exe, "-n"], input=text, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# --- stsmfa-use and stsmfa-drop ---------------------------------------------------

@pytest.mark.parametrize("profile", ["work", "plain"])
@pytest.mark.parametrize("shell", SHELLS)
def test_use_exports_the_session(shell, profile, tmp_path):
    expires = epoch(FAR)
    sh = Shell(shell, tmp_path, expires)
    dump, path = sh.dump()
    res = sh.run(f'stsmfa-use {profile}\necho "rc={sh.rc}"\n{dump}',
                 env={"AWS_PROFILE": "work", "AWS_SECURITY_TOKEN": "old-token"})
    assert res.returncode == 0, res.stderr
    assert res.stdout == "rc=0\n", "stsmfa-use prints nothing on success"
    env = read_env(path)
    assert {k: env.get(k) for k in SESSION_VARS} == session(profile, expires, False)
    assert "AWS_PROFILE" not in env
    assert "AWS_SECURITY_TOKEN" not in env
    assert "AWS_REGION" not in env and "AWS_DEFAULT_REGION" not in env


@pytest.mark.parametrize("shell", SHELLS)
def test_use_passes_profile_and_options_to_stsmfa_env(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    res = sh.run("stsmfa-use eu --refresh --duration=1h")
    assert res.returncode == 0, res.stderr
    fmt = "fish" if shell == "fish" else "sh"
    assert sh.calls() == [f"env eu --refresh --duration=1h --format {fmt}"]


@pytest.mark.parametrize("profile", ["bad", "half"])
@pytest.mark.parametrize("shell", SHELLS)
def test_use_failure_leaves_the_shell_unchanged(shell, profile, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    before, before_path = sh.dump()
    after, after_path = sh.dump()
    res = sh.run(f'{before}\nstsmfa-use {profile}\necho "rc={sh.rc}"\n{after}',
                 env={"AWS_PROFILE": "orig", "AWS_ACCESS_KEY_ID": "AKIAUSERKEY",
                      "AWS_REGION": "us-east-1"})
    assert "rc=1" in res.stdout.splitlines(), (res.stdout, res.stderr)
    assert "ASIAHALF" not in res.stdout
    assert "stsmfa: error:" in res.stderr, "stsmfa's own message reaches the user"
    assert read_env(after_path) == read_env(before_path)


@pytest.mark.parametrize("shell", SHELLS)
def test_drop_removes_the_session(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    dump, path = sh.dump()
    res = sh.run(f"stsmfa-use work\nstsmfa-drop\n{dump}",
                 env={"AWS_REGION": "us-east-1", "AWS_SECURITY_TOKEN": "old"})
    assert res.returncode == 0, res.stderr
    env = read_env(path)
    for name in SESSION_VARS + ["AWS_SECURITY_TOKEN"]:
        assert name not in env, name
    assert env.get("AWS_REGION") == "us-east-1", "a region the user set stays"


@pytest.mark.parametrize("shell", SHELLS)
def test_region_set_by_use_goes_with_the_session(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    with_region, p1 = sh.dump()
    dropped, p2 = sh.dump()
    switched, p3 = sh.dump()
    res = sh.run(f"stsmfa-use eu\n{with_region}\nstsmfa-drop\n{dropped}\n"
                 f"stsmfa-use eu\nstsmfa-use work\n{switched}",
                 env={"AWS_REGION": "us-east-1"})
    assert res.returncode == 0, res.stderr
    env = read_env(p1)
    assert (env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")) == ("eu-west-1", "eu-west-1")
    for path in (p2, p3):
        env = read_env(path)
        assert "AWS_REGION" not in env and "AWS_DEFAULT_REGION" not in env, path.name
    assert read_env(p3)["STSMFA_PROFILE"] == "work"


@pytest.mark.parametrize("shell", SHELLS)
def test_drop_without_session_is_harmless(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    res = sh.run(f'stsmfa-drop\necho "rc={sh.rc}"', env={"AWS_REGION": "us-east-1"})
    assert res.stdout == "rc=0\n" and res.stderr == "", res


# --- the prompt segment -----------------------------------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_shows_minutes_left_without_starting_a_process(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(dt.timedelta(minutes=42)))
    res = sh.run(f"stsmfa-use work\n{sh.no_path}\n{PROMPT}\n{PROMPT}")
    assert res.stderr == "", "no command was looked up on PATH, nothing warned"
    assert res.returncode == 0
    got = prompts(res.stdout)
    assert len(got) == 2, res.stdout
    for seg in got:
        assert seg in ("aws:work 42m", "aws:work 41m"), seg


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_shows_hours_and_minutes(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(dt.timedelta(hours=3, minutes=5)))
    res = sh.run(f"stsmfa-use work\n{sh.no_path}\n{PROMPT}")
    assert res.stderr == ""
    assert prompts(res.stdout)[0] in ("aws:work 3h05m", "aws:work 3h04m"), res.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_expired_warns_once(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(-dt.timedelta(minutes=5)))
    res = sh.run(f"stsmfa-use work\n{sh.no_path}\n{PROMPT}\n{PROMPT}\n{PROMPT}")
    assert prompts(res.stdout) == ["aws:work expired"] * 3, res.stdout
    assert res.stderr.splitlines() == ["stsmfa: session for work expired; run stsmfa-use work"]


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_warns_again_for_a_new_expired_session(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(-dt.timedelta(minutes=5)))
    res = sh.run(f"stsmfa-use work\n{PROMPT}\nstsmfa-use eu\n{PROMPT}\n{PROMPT}")
    assert prompts(res.stdout) == ["aws:work expired", "aws:eu expired", "aws:eu expired"]
    assert res.stderr.splitlines() == ["stsmfa: session for work expired; run stsmfa-use work",
                                       "stsmfa: session for eu expired; run stsmfa-use eu"]


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_is_empty_without_a_session(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(FAR))
    res = sh.run(f"{sh.no_path}\n{PROMPT}", env={"AWS_ACCESS_KEY_ID": "AKIAUSER"})
    assert prompts(res.stdout) == [""] and res.stderr == "", res
    res = sh.run(f"stsmfa-use work\nstsmfa-drop\n{sh.no_path}\n{PROMPT}")
    assert prompts(res.stdout) == [""] and res.stderr == "", res


# Values of STSMFA_EXPIRATION_EPOCH that say nothing about the time left, as a session
# loaded by hand may have (None: unset, as after an older stsmfa that did not export it).
NOT_AN_EPOCH = [None, "", "tomorrow", "2026-11-23T09:43:13Z", "12e3", "-60", "0x10", "1.5",
                " 1795427393", "1795427393 ", "1795427393\n", "99999999999999999999999"]


def expired_warning(profile: str) -> str:
    return f"stsmfa: session for {profile} expired; run stsmfa-use {profile}"


@pytest.mark.parametrize("left, shown", [
    (61, ("2m", "1m")),
    (3600, ("1h00m", "59m")),
    (3 * 3600 + 5 * 60, ("3h05m", "3h04m")),
    (12 * 3600, ("12h00m", "11h59m")),
    (-60, ("expired",)),
])
@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_time_left_comes_from_the_epoch(shell, left, shown, tmp_path):
    # As in the shell that `stsmfa exec PROFILE` starts: no stsmfa-use ran in it. The RFC 3339
    # time disagrees on purpose: the segment must go by STSMFA_EXPIRATION_EPOCH alone.
    # (fish measures its boot time with one `date` at the first prompt, hence the PATH.)
    sh = Shell(shell, tmp_path, epoch(FAR))
    decoy = rfc3339(dt.timedelta(hours=5) if left < 0 else -dt.timedelta(hours=5))
    res = sh.run(f"{PROMPT}\n{sh.no_path}\n{PROMPT}",
                 env={"STSMFA_PROFILE": "ci", "AWS_CREDENTIAL_EXPIRATION": decoy,
                      "STSMFA_EXPIRATION_EPOCH": str(epoch(dt.timedelta(seconds=left)))})
    got = prompts(res.stdout)
    assert len(got) == 2 and all(seg in [f"aws:ci {x}" for x in shown] for seg in got), (got, res.stderr)
    assert res.stderr.splitlines() == ([expired_warning("ci")] if left < 0 else [])


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_without_a_usable_epoch_shows_the_profile(shell, tmp_path):
    # Time left unknown: the profile alone, no message, no failure, even under `set -u`.
    sh = Shell(shell, tmp_path, epoch(FAR))
    strict = "" if shell == "fish" else "set -u\n"
    for value in NOT_AN_EPOCH:
        env = {"STSMFA_PROFILE": "ci", "AWS_CREDENTIAL_EXPIRATION": rfc3339(dt.timedelta(minutes=42))}
        if value is not None:
            env["STSMFA_EXPIRATION_EPOCH"] = value
        res = sh.run(f"{strict}{PROMPT}\n{sh.no_path}\nstsmfa_prompt > /dev/null\n"
                     f"echo \"rc={sh.rc}\"\n{PROMPT}", env=env)
        assert prompts(res.stdout) == ["aws:ci", "aws:ci"], (value, res)
        assert "rc=0" in res.stdout.splitlines() and res.stderr == "", (value, res)


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_warns_again_when_the_expiry_changes(shell, tmp_path):
    # The same profile, another (also expired) session: one more warning, not one per prompt.
    sh = Shell(shell, tmp_path, epoch(FAR))
    first, second = epoch(-dt.timedelta(minutes=5)), epoch(-dt.timedelta(minutes=2))
    renew = (f"set -gx STSMFA_EXPIRATION_EPOCH {second}" if shell == "fish"
             else f"export STSMFA_EXPIRATION_EPOCH={second}")
    res = sh.run(f"{PROMPT}\n{sh.no_path}\n{PROMPT}\n{renew}\n{PROMPT}\n{PROMPT}",
                 env={"STSMFA_PROFILE": "ci", "STSMFA_EXPIRATION_EPOCH": str(first)})
    assert prompts(res.stdout) == ["aws:ci expired"] * 4, res.stdout
    assert res.stderr.splitlines() == [expired_warning("ci")] * 2


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_prompt_into_a_variable_warns_once(shell, tmp_path):
    # The form the header recommends for PROMPT_COMMAND / precmd.
    sh = Shell(shell, tmp_path, epoch(-dt.timedelta(minutes=1)))
    res = sh.run(f"stsmfa-use work\n{sh.no_path}\n"
                 "stsmfa_prompt -v stsmfa_ps; printf '[%s]\\n' \"$stsmfa_ps\"\n"
                 "stsmfa_prompt -v stsmfa_ps; printf '[%s]\\n' \"$stsmfa_ps\"\n"
                 "stsmfa-drop; stsmfa_prompt -v stsmfa_ps; printf '[%s]\\n' \"$stsmfa_ps\"")
    assert prompts(res.stdout) == ["aws:work expired", "aws:work expired", ""], res.stdout
    assert res.stderr.splitlines() == ["stsmfa: session for work expired; run stsmfa-use work"]


def test_bash_prompt_without_epochseconds_uses_the_printf_clock(tmp_path):
    # bash before 5.0 has no $EPOCHSECONDS; printf's %(%s)T builtin is the fallback.
    sh = Shell("bash", tmp_path, epoch(dt.timedelta(minutes=42)))
    res = sh.run(f"stsmfa-use work\nunset EPOCHSECONDS\n{sh.no_path}\n{PROMPT}")
    assert res.stderr == ""
    assert prompts(res.stdout)[0] in ("aws:work 42m", "aws:work 41m"), res.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_prompt_in_ps1(shell, tmp_path):
    sh = Shell(shell, tmp_path, epoch(dt.timedelta(minutes=42)))
    if shell == "bash":
        expand = "PS1='<$(stsmfa_prompt)> \\$ '; printf '[%s]\\n' \"${PS1@P}\""
    else:
        expand = "setopt prompt_subst; PROMPT='<$(stsmfa_prompt)> %# '; print -rP -- \"[$PROMPT]\""
    res = sh.run(f"stsmfa-use work\n{expand}")
    assert res.stderr == ""
    assert re.fullmatch(r"<aws:work 4[12]m> [$#%] ", prompts(res.stdout)[0]), res.stdout


# --- the real stsmfa ----------------------------------------------------------------

def epoch_of(cred: dict) -> str:
    """STSMFA_EXPIRATION_EPOCH for a credential_process answer: its Expiration in Unix seconds."""
    return str(int(parse_rfc3339_z(cred["Expiration"])))


@pytest.mark.parametrize("fmt", ["sh", "fish", "powershell", "dotenv", "json"])
def test_env_exports_the_expiration_epoch(home, user, fmt):
    home.add_source_profile("work", user)
    want = epoch_of(home.credential_process("work"))
    out = home.run("env", "work", "--format", fmt)
    assert out.returncode == 0, out.stderr
    if fmt in ("sh", "fish"):  # loaded by the shell itself, as `eval` / `source` do
        shell = need("sh" if fmt == "sh" else "fish")
        got = home.sh(out.stdout + "\nprintf '%s' \"$STSMFA_EXPIRATION_EPOCH\"\n", shell=shell)
        assert got.returncode == 0, got.stderr
        assert got.stdout == want
    elif fmt == "json":
        assert json.loads(out.stdout)["STSMFA_EXPIRATION_EPOCH"] == want
    else:
        line = {"powershell": f"$Env:STSMFA_EXPIRATION_EPOCH = '{want}'",
                "dotenv": f"STSMFA_EXPIRATION_EPOCH={want}"}[fmt]
        assert [ln for ln in out.stdout.splitlines() if "STSMFA_EXPIRATION_EPOCH" in ln] == [line]


def test_exec_exports_the_expiration_epoch(home, user):
    home.add_source_profile("work", user)
    cred = home.credential_process("work")
    cp = home.run("exec", "work", "--", "sh", "-c",
                  'printf "%s\\n" "$STSMFA_EXPIRATION_EPOCH" "$AWS_CREDENTIAL_EXPIRATION"')
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines() == [epoch_of(cred), cred["Expiration"]]


def left_shown(minutes: int) -> str:
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


@pytest.mark.parametrize("shell", SHELLS)
def test_init_use_prompt_and_drop_with_the_real_stsmfa(home, user, shell):
    need(shell)
    home.add_source_profile("work", user)
    load = "stsmfa init fish | source" if shell == "fish" else f'eval "$(stsmfa init {shell})"'
    seen = "sh -c 'printf \"<%s>\\n\" \"${STSMFA_EXPIRATION_EPOCH-unset}\"'"
    before = time.time()
    res = home.sh(f"{load}\nstsmfa-use work\n{PROMPT}\n{seen}\nstsmfa-drop\n{PROMPT}\n{seen}", shell=shell)
    after = time.time()
    assert res.returncode == 0, res.stderr
    want = epoch_of(home.credential_process("work"))
    assert re.findall(r"^<(.*)>$", res.stdout, re.M) == [want, "unset"], res.stdout
    # The segment at some instant between `before` and `after`.
    possible = {f"aws:work {left_shown(-(-(int(want) - int(t)) // 60))}" for t in range(int(before), int(after) + 2)}
    got = prompts(res.stdout)
    assert len(got) == 2 and got[0] in possible and got[1] == "", (got, possible)


INIT_SHELLS = ["bash", "zsh", "fish", "powershell"]


@pytest.mark.parametrize("shell", INIT_SHELLS)
def test_init_output_is_valid_for_its_shell(home, shell):
    cp = home.run("init", shell, timeout=30)
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.strip(), "empty init output"
    assert "@STSMFA@" not in out, "placeholder not substituted"
    assert str(home.bin) in out, "the binary's own path is not in the script"
    if shell in SHELLS:  # they have an `-n` syntax check
        exe = need(shell)
        chk = subprocess.run([exe, "-n"], input=out, capture_output=True, text=True, timeout=30)
        assert chk.returncode == 0, f"{shell} -n: {chk.stderr}"
        assert "stsmfa-use" in out and "stsmfa-drop" in out and "stsmfa_prompt" in out


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
