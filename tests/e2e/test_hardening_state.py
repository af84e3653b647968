"""Defects 1 and 2 of the attack report: the state directory and core dumps.

A state directory others can write to is refused before anything is written
in it; symlinks and FIFOs planted at the names stsmfa uses are never
followed, never block and never touch their targets; a parseable cache entry
with an absurd expiry is a miss, not a crash; and while stsmfa holds secrets
it runs with a core file limit of 0, its children with the user's."""

from __future__ import annotations

import json
import os
import time

import pytest

from assertions import assert_error
from harness import sts_ok
from keyrings import keyutils_keys, keyutils_read, keyutils_update


def state_name(name: str) -> str:
    """What stsmfa calls the state files of a profile or MFA serial (lock::file_name)."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)[:64]
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{safe}-{h:016x}"


def victim_file(home) -> tuple:
    p = home.home / "important.txt"
    p.write_text("precious\n")
    return p, p.read_text()


def assert_no_crash(cp) -> None:
    assert cp.returncode in (0, 1), f"exit {cp.returncode}\nstderr: {cp.stderr}"
    assert "panicked" not in cp.stderr and "overflow" not in cp.stderr, cp.stderr


# ---------------------------------------------------------------------------
# The state directory


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_state_dir_writable_by_others_is_refused_and_nothing_written(home, user, bed, mode):
    prof = home.add_source_profile("work", user)
    os.chmod(home.state, mode)
    cp = home.run("credential-process", "work")
    err = assert_error(cp, "writable by other users", str(home.state), "hint:", "chmod go-w")
    assert "STSMFA_STATE_DIR" in err
    assert list(home.state.iterdir()) == [], "nothing written in it"
    assert home.calls(prof.log) == 0 and sts_ok(bed, user) == 0, "refused before any code or STS call"


def test_state_dir_made_by_stsmfa_is_private(home, user, bed):
    home.add_source_profile("work", user)
    fresh = home.root / "new" / "state"
    cp = home.run("credential-process", "work", env={"STSMFA_STATE_DIR": str(fresh)})
    assert cp.returncode == 0, cp.stderr
    assert fresh.stat().st_mode & 0o777 == 0o700
    for f in fresh.iterdir():
        assert f.is_file() and not f.is_symlink(), f
        assert f.stat().st_mode & 0o077 == 0, f"{f} is {oct(f.stat().st_mode)}"


def test_no_home_and_no_state_dir_is_a_clear_error_not_tmp(home, user, bed):
    home.add_source_profile("work", user)
    cp = home.run("credential-process", "work", env={
        "HOME": None, "STSMFA_STATE_DIR": None, "XDG_RUNTIME_DIR": None, "XDG_CACHE_HOME": None,
    })
    assert_error(cp, "HOME is not set", "STSMFA_STATE_DIR")
    assert sts_ok(bed, user) == 0


def test_symlink_planted_at_the_lock_path_leaves_the_target_untouched(home, user, bed):
    prof = home.add_source_profile("work", user)
    victim, before = victim_file(home)
    lock = home.state / f"{state_name('work')}.lock"
    lock.symlink_to(victim)
    cp = home.run("credential-process", "work")
    assert_error(cp, "symbolic link", str(lock))
    assert victim.read_text() == before
    # A dangling link would have created the file of the attacker's choosing.
    lock.unlink()
    chosen = home.home / "chosen-by-attacker"
    lock.symlink_to(chosen)
    cp = home.run("credential-process", "work")
    assert_error(cp, "symbolic link", str(lock))
    assert not chosen.exists() and not chosen.is_symlink()
    assert home.calls(prof.log) == 0 and sts_ok(bed, user) == 0


def test_symlinks_planted_at_the_spent_code_record_leave_targets_untouched(home, user, bed):
    """The attack of the report: links at the record and at its old temp name."""
    home.add_source_profile("work", user)
    victim, before = victim_file(home)
    used = home.state / f"{state_name(user.serial)}.used"
    (home.state / f"{used.name}.tmp").symlink_to(victim)
    cp = home.run("credential-process", "work")
    assert cp.returncode == 0, cp.stderr
    assert victim.read_text() == before
    assert used.is_file() and not used.is_symlink(), "the record is a file of its own"
    assert (home.state / f"{used.name}.tmp").is_symlink(), "the planted link is left alone"

    home.run("clear", "work")
    used.unlink()
    used.symlink_to(victim)
    cp = home.run("credential-process", "work")
    assert cp.returncode == 0, cp.stderr  # losing the record only loses its protection
    assert victim.read_text() == before
    assert sts_ok(bed, user) == 2


def test_fifo_planted_as_the_lock_file_fails_fast(home, user, bed):
    prof = home.add_source_profile("work", user)
    lock = home.state / f"{state_name('work')}.lock"
    os.mkfifo(lock)
    start = time.monotonic()
    cp = home.run("credential-process", "work", env={"STSMFA_LOCK_TIMEOUT": "30"}, timeout=40)
    took = time.monotonic() - start
    assert_error(cp, "FIFO", str(lock), "hint:")
    assert took < 10, f"took {took:.1f} s with STSMFA_LOCK_TIMEOUT=30"
    assert home.calls(prof.log) == 0 and sts_ok(bed, user) == 0


# ---------------------------------------------------------------------------
# Absurd expiries in the store


@pytest.mark.parametrize("exp", [18446744073709551615, 253402300800, 0])
def test_cache_entry_with_an_absurd_expiry_is_a_miss_not_a_crash(home, user, bed, keyutils_ok, exp):
    home.env["STSMFA_STORE"] = "keyutils"
    home.add_source_profile("work", user, mfa_process=False)
    before = set(keyutils_keys(home.env))
    first = home.credential_process("work", env={"STSMFA_MFA_CODE": home.code(user)})
    new = [k for k, desc in keyutils_keys(home.env).items() if k not in before and user.serial in desc]
    assert len(new) == 1, keyutils_keys(home.env)
    entry = json.loads(keyutils_read(new[0], home.env))
    assert set(entry) == {"v", "id", "sk", "st", "exp"}, sorted(entry)
    entry["exp"] = exp
    keyutils_update(new[0], json.dumps(entry), home.env)

    for args in (["status"], ["status", "--json"], ["status", "work"]):
        cp = home.run(*args)
        assert_no_crash(cp)
        assert cp.returncode == 0, cp.stderr
        assert first["AccessKeyId"][-4:] not in cp.stdout, "the corrupt entry is not listed"

    cp = home.run("credential-process", "work", "-v")  # no code source: a miss ends in a clean error
    assert_no_crash(cp)
    assert cp.returncode == 1 and cp.stdout == "", cp.stderr
    assert "cache miss" in cp.stderr.lower() and "stsmfa: error:" in cp.stderr, cp.stderr

    cp = home.run("credential-process", "work", env={"STSMFA_MFA_CODE": home.code(user)})
    assert_no_crash(cp)
    assert cp.returncode == 0, cp.stderr
    cred = json.loads(cp.stdout)
    assert cred["AccessKeyId"] != first["AccessKeyId"], "a new session replaced the corrupt one"
    assert sts_ok(bed, user) == 2


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
