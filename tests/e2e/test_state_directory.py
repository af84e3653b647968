"""The state directory of locks and spent-code records (defect 1 of the attack
report): one others can write to is refused before anything is written in it,
one stsmfa makes is private, no HOME is an error and never /tmp, and symlinks
and FIFOs planted at the names stsmfa uses are never followed, never block and
never touch their targets."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path

import pytest

from assertions import assert_error
from harness import sts_ok


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


def test_no_home_and_a_shared_runtime_dir_never_put_state_in_the_temp_dir(home, user, bed):
    """Without HOME the home directory comes from the password database (as
    the `dirs` crate finds it), and an XDG_RUNTIME_DIR others can write is
    passed over: state never goes to the temp dir."""
    home.add_source_profile("work", user)
    shared = Path("/tmp/stsmfa")
    existed = shared.exists()
    cp = home.run("credential-process", "work", env={
        "HOME": None, "STSMFA_STATE_DIR": None, "XDG_RUNTIME_DIR": "/tmp", "XDG_CACHE_HOME": None,
    })
    assert cp.returncode == 0, cp.stderr
    assert existed or not shared.exists(), "state went to /tmp/stsmfa"
    assert not any(p.name.startswith("stsmfa") for p in home.tmp.iterdir()), list(home.tmp.iterdir())
    home_of_user = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert (home_of_user / ".cache" / "stsmfa").is_dir()


# ---------------------------------------------------------------------------
# Planted links and FIFOs


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
