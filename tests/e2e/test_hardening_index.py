"""The session index: `status` and `clear --all` see every session stsmfa
cached, however many profiles and however many processes wrote at once; and
the smaller defects of how profiles and config files are read."""

from __future__ import annotations

from assertions import assert_error
from parallel import run_parallel

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


def test_a_config_file_with_a_non_utf8_byte_is_an_error_naming_file_and_line(home, user):
    home.add_source_profile("work", user)
    text = home.config_path.read_bytes()
    home.config_path.write_bytes(text + b"# caf\xe9 au lait\n")
    line = text.count(b"\n") + 1
    cp = home.run("credential-process", "work")
    err = assert_error(cp, str(home.config_path), f"line {line}", "UTF-8")
    assert "hint:" in err
