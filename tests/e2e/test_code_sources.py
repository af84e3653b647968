"""Where the MFA code comes from (SPEC: code sources): --mfa-code,
STSMFA_MFA_CODE and the profile's mfa_process, in that order; without a
terminal and without a code, an error at once naming the three; malformed
codes refused before any STS call, wrong ones by STS, a code just used never
sent again, and an authenticator that only knows the current step waited for;
and the code prompt programs for when there is no terminal (zenity, kdialog,
osascript, ykman: fakes from fake_bin/ first on PATH)."""

from __future__ import annotations

import json
import re
import time

import pytest

from assertions import assert_error, assert_session
from fake_programs import authenticator_command, fake_program, read_json_lines
from harness import sts_failed, sts_ok
from pty_driver import ensure_room_in_step, seconds_left_in_step


# ---------------------------------------------------------------------------
# --mfa-code, STSMFA_MFA_CODE and mfa_process


def test_mfa_code_option_and_env(home, make_user, bed):
    a, b = make_user(), make_user()
    home.add_source_profile("opt", a, mfa_process=False)
    home.add_source_profile("env", b, mfa_process=False)
    cp = home.run("credential-process", "opt", "--mfa-code", home.code(a))
    assert cp.returncode == 0, cp.stderr
    assert_session(json.loads(cp.stdout), a, hours=12)
    cp = home.run("credential-process", "env", env={"STSMFA_MFA_CODE": home.code(b)})
    assert cp.returncode == 0, cp.stderr
    assert_session(json.loads(cp.stdout), b, hours=12)
    assert sts_ok(bed, a) == 1 and sts_ok(bed, b) == 1


def test_mfa_code_sources_precedence(home, make_user):
    """--mfa-code and STSMFA_MFA_CODE win over the profile's mfa_process."""
    a, b = make_user(), make_user()
    log_a, log_b = home.tools / "a.log", home.tools / "b.log"
    home.add_source_profile("opt", a, mfa_process=home.mfa_process(a, log_a, mode="fail"))
    home.add_source_profile("env", b, mfa_process=home.mfa_process(b, log_b, mode="fail"))
    cp = home.run("credential-process", "opt", "--mfa-code", home.code(a), env={"STSMFA_MFA_CODE": "000000"})
    assert cp.returncode == 0, cp.stderr
    cp = home.run("credential-process", "env", env={"STSMFA_MFA_CODE": home.code(b)})
    assert cp.returncode == 0, cp.stderr
    assert home.calls(log_a) == 0 and home.calls(log_b) == 0


def test_no_terminal_no_code_fails_at_once_naming_the_three_ways(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    t0 = time.monotonic()
    cp = home.run("credential-process", "work", timeout=30)
    took = time.monotonic() - t0
    assert_error(cp, "--mfa-code", "STSMFA_MFA_CODE", "mfa_process")
    assert took < 5, f"took {took:.1f}s"
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


# ---------------------------------------------------------------------------
# malformed, wrong and reused codes


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 345"])
def test_malformed_code_is_an_error_without_sts_call(home, user, bed, code):
    home.add_source_profile("work", user, mfa_process=False)
    cp = home.run("credential-process", "work", "--mfa-code", code)
    assert_error(cp, code=(1, 2))
    assert sts_ok(bed, user) == 0 and sts_failed(bed, user) == 0


def test_wrong_code_is_an_error_and_nothing_is_cached(home, user, bed):
    log = home.tools / "wrong.log"
    home.add_source_profile("work", user, mfa_process=home.mfa_process(user, log, mode="wrong"))
    cp = home.run("credential-process", "work")
    assert_error(cp, "code")
    assert sts_failed(bed, user) >= 1 and sts_ok(bed, user) == 0
    assert home.calls(log) == 1, "not a terminal: a rejected code must not be asked again"
    assert home.status_for(user) == []


def test_a_given_code_that_was_just_used_is_refused_without_calling_sts(home, user, bed):
    home.add_source_profile("work", user, mfa_process=False)
    code = home.code(user)
    ok = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": code})
    assert ok.returncode == 0, ok.stderr
    again = home.run("credential-process", "work", "--refresh", env={"STSMFA_MFA_CODE": code})
    assert_error(again, "already used", hint=True)
    assert sts_ok(bed, user) == 1
    assert sts_failed(bed, user) == 0, "the used code was sent to STS again"


def test_slow_authenticator_code_of_a_used_step_waits_for_the_next_step(home, user, bed):
    """Takes up to 30 s: the second call must wait for the next 30-second step."""
    log = home.tools / "authenticator.log"
    home.add_source_profile("work", user, mfa_process=authenticator_command(home, user, log))
    ensure_room_in_step(8)  # set-up: both calls start in the same step
    first = home.run("credential-process", "work")
    assert first.returncode == 0, first.stderr
    left = seconds_left_in_step()
    t0 = time.monotonic()
    second = home.run("credential-process", "work", "--refresh", timeout=60)
    took = time.monotonic() - t0
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["AccessKeyId"] != json.loads(first.stdout)["AccessKeyId"]
    assert sts_failed(bed, user) == 0, "the code of the used step was sent again"
    assert sts_ok(bed, user) == 2
    steps = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert steps[-1] > steps[0], f"codes asked in steps {steps}"
    assert took >= left - 1.5, f"returned after {took:.1f}s, {left:.1f}s before the next step"
    assert re.search(r"wait", second.stderr, re.I), f"no word about waiting on stderr: {second.stderr!r}"


# ---------------------------------------------------------------------------
# code prompt programs without a terminal: fakes first on PATH


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
