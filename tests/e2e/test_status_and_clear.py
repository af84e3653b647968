"""`stsmfa status` and `stsmfa clear`: what status lists (the key id masked,
never a secret), clearing one profile or all of them, a credential_process
profile standing for its source, and the session index behind them: every
cached session is listed and cleared, however many profiles and however many
processes wrote at once."""

from __future__ import annotations

import json
import os
import re

from harness import HOUR, missing, sts_ok
from parallel import run_parallel


# ---------------------------------------------------------------------------
# status and clear


def test_status_and_clear(home, user, bed, store):
    prof = home.add_source_profile("work", user)
    cred = home.credential_process("work")
    akid = cred["AccessKeyId"]

    entries = home.status_for(user)
    assert len(entries) == 1, entries
    e = entries[0]
    assert e["profile"] == "work"
    assert e["mfa_serial"] == user.serial
    assert e["store"] == store
    assert e["access_key_id"] != akid
    assert re.fullmatch(r"ASIA…[A-Z0-9]{4}", e["access_key_id"]), e["access_key_id"]
    assert e["access_key_id"].endswith(akid[-4:])
    assert e["expiration"] == cred["Expiration"]
    assert abs(e["seconds_left"] - 12 * HOUR) < 120, e
    # only the profile's own entries with PROFILE
    assert [x["mfa_serial"] for x in home.status("work") if x["mfa_serial"] == user.serial] == [user.serial]

    text = home.run("status")
    assert text.returncode == 0, text.stderr
    assert "work" in text.stdout
    for out in (text.stdout, text.stderr, json.dumps(entries)):
        assert cred["SecretAccessKey"] not in out and cred["SessionToken"] not in out and akid not in out

    cl = home.run("clear", "work")
    assert cl.returncode == 0, cl.stderr
    assert home.status_for(user) == []
    again = home.credential_process("work", "--mfa-code", home.code(user))
    assert again["AccessKeyId"] != akid
    assert sts_ok(bed, user) == 2


def test_clear_all(home, make_user):
    if not os.environ.get("STSMFA_E2E_PRIVATE_KEYRINGS"):
        missing("clear --all would empty the real keyrings: run through tests/run.sh (private ones)")
    a, b = make_user(), make_user()
    home.add_source_profile("one", a)
    home.add_source_profile("two", b)
    home.credential_process("one")
    home.credential_process("two")
    assert len(home.status_for(a)) == 1 and len(home.status_for(b)) == 1
    cl = home.run("clear", "--all")
    assert cl.returncode == 0, cl.stderr
    assert home.status_for(a) == [] and home.status_for(b) == []


def test_status_and_clear_of_a_credential_process_profile_mean_its_source(home, user, store):
    home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    served = home.credential_process("work-mfa")
    rows = home.status("work-mfa")
    assert [r["profile"] for r in rows] == ["work"], rows
    assert rows[0]["access_key_id"].startswith("ASIA")
    assert served["AccessKeyId"].endswith(rows[0]["access_key_id"][-4:])
    cp = home.run("clear", "work-mfa")
    assert cp.returncode == 0, cp.stderr
    assert "removed the session of profile work" in cp.stderr
    assert home.status_for(user) == []


# ---------------------------------------------------------------------------
# the session index


N_PROFILES = 60


def _profiles(home, make_user, n: int) -> list[tuple[str, object]]:
    out = []
    for i in range(n):
        user = make_user(prefix=f"idx{i}")
        name = f"p{i:02d}"
        home.add_source_profile(name, user, mfa_process=True)
        out.append((name, user))
    return out


def _cached_profiles(home) -> set[str]:
    return {row["profile"] for row in home.status()}


def _assert_all_listed_then_cleared(home, names: set[str]) -> None:
    listed = _cached_profiles(home)
    assert names <= listed, f"status misses {sorted(names - listed)}"
    cp = home.run("clear", "--all")
    assert cp.returncode == 0, cp.stderr
    assert not (_cached_profiles(home) & names), "sessions survived clear --all"
    # A code program that fails: only a cache hit could still succeed.
    for name in sorted(names)[:3] + sorted(names)[-3:]:
        home.set_config(f"profile {name}", {"mfa_process": "false"})
        cp = home.run("credential-process", name, "-v", timeout=30)
        assert cp.returncode != 0, f"{name} still served from the cache after clear --all"
        assert "cache hit" not in cp.stderr


def test_sixty_profiles_cached_one_after_another_are_all_listed_and_cleared(home, make_user, store):
    profiles = _profiles(home, make_user, N_PROFILES)
    for name, _ in profiles:
        home.credential_process(name)
    _assert_all_listed_then_cleared(home, {n for n, _ in profiles})


def test_sixty_profiles_cached_in_parallel_are_all_listed_and_cleared(home, make_user, store):
    profiles = _profiles(home, make_user, N_PROFILES)
    results = run_parallel(
        [[str(home.bin), "credential-process", name] for name, _ in profiles],
        env=home.env, cwd=home.root, timeout=180,
    )
    failed = [r for r in results if r.returncode != 0]
    assert not failed, failed[:3]
    _assert_all_listed_then_cleared(home, {n for n, _ in profiles})


def test_after_clear_all_no_profile_is_served_from_the_cache(home, make_user, store):
    profiles = _profiles(home, make_user, 3)
    for name, _ in profiles:
        home.credential_process(name)
    assert home.run("clear", "--all").returncode == 0
    for name, _ in profiles:
        home.set_config(f"profile {name}", {"mfa_process": "false"})
        cp = home.run("credential-process", name, "-v")
        assert cp.returncode != 0, f"{name} still served from the cache after clear --all"
        assert "cache hit" not in cp.stderr
