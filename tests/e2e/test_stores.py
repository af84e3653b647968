"""What stsmfa keeps in the credential stores (Secret Service, keyutils) and how
it reads it back: an entry turned to garbage or given an absurd expiry is a
miss that the next session overwrites, never a crash; a corrupt index breaks
nothing; STSMFA_STORE=none caches nothing and says so. A store that is locked,
absent or hung, and an entry holding someone else's JSON, are in
test_faults.py."""

from __future__ import annotations

import json

import pytest

from assertions import assert_session
from harness import sts_ok
from keyrings import (
    keyutils_keys,
    keyutils_read,
    keyutils_update,
    secret_service_items,
    secret_service_lookup,
    secret_service_replace,
)


# ---------------------------------------------------------------------------
# corrupt entries


def _entries(store: str, env: dict, needle: str) -> list:
    """Store entries of stsmfa whose name mentions `needle`:
    attribute dicts (Secret Service) or (key id, description) (keyutils)."""
    if store == "secret-service":
        return [a for a in secret_service_items(env).values() if any(needle in v for v in a.values())]
    return [(k, d) for k, d in keyutils_keys(env).items() if needle in d and d.endswith("stsmfa")]


def _corrupt(store: str, env: dict, entry, garbage: str = "not json {{{") -> None:
    if store == "secret-service":
        assert entry.get("service") == "stsmfa", entry
        stored = secret_service_lookup(env, entry)
        assert stored and len(stored.encode()) < 2500, "entry missing or over 2,500 bytes"
        json.loads(stored)  # compact JSON
        secret_service_replace(env, entry, garbage)
        assert secret_service_lookup(env, entry) == garbage
        same = [a for a in secret_service_items(env).values() if all(a.get(k) == v for k, v in entry.items())]
        assert len(same) == 1, same
    else:
        kid, _desc = entry
        stored = keyutils_read(kid, env)
        assert stored and len(stored.encode()) < 2500, "entry missing or over 2,500 bytes"
        json.loads(stored)
        keyutils_update(kid, garbage, env)
        assert keyutils_read(kid, env) == garbage


def test_corrupt_store_entry_is_a_miss_and_is_overwritten(home, user, bed, store):
    prof = home.add_source_profile("work", user)
    first = home.credential_process("work")
    entries = _entries(store, home.env, user.serial)
    assert len(entries) == 1, f"expected one entry naming {user.serial}: {entries}"
    _corrupt(store, home.env, entries[0])

    second = home.run("credential-process", "work", "-v", "--mfa-code", home.code(user))
    assert second.returncode == 0, second.stderr
    cred = json.loads(second.stdout)
    assert cred["AccessKeyId"] != first["AccessKeyId"]
    assert sts_ok(bed, user) == 2
    assert "not json" not in second.stderr

    # overwritten: the next call is a hit on the new session
    third = home.run("credential-process", "work", "-v")
    assert third.returncode == 0 and json.loads(third.stdout) == cred
    assert "cache hit" in third.stderr.lower(), third.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 2


def test_corrupt_index_breaks_nothing(home, user, store):
    """The index entry (the list of sessions for `status`) turned to garbage is
    a miss too, never a failure."""
    home.add_source_profile("work", user)
    cred = home.credential_process("work")
    others = [e for e in _entries(store, home.env, "") if ":mfa/" not in str(e)]
    assert others, "stsmfa keeps an index entry beside the sessions"
    for e in others:
        _corrupt(store, home.env, e, garbage="[garbage")
    again = home.run("credential-process", "work")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == cred
    st = home.run("status", "--json")
    assert st.returncode == 0, st.stderr
    assert isinstance(json.loads(st.stdout), list)
    assert home.run("status").returncode == 0
    assert home.run("clear", "work").returncode == 0


def assert_no_crash(cp) -> None:
    assert cp.returncode in (0, 1), f"exit {cp.returncode}\nstderr: {cp.stderr}"
    assert "panicked" not in cp.stderr and "overflow" not in cp.stderr, cp.stderr


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
# no store


def test_store_none_warns_and_asks_every_time(home, user, bed):
    prof = home.add_source_profile("work", user)
    env = {"STSMFA_STORE": "none"}
    runs = [
        home.run("credential-process", "work", env=env),
        home.run("credential-process", "work", env={**env, "STSMFA_MFA_CODE": home.code(user)}),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert_session(json.loads(r.stdout), user, hours=12)
        warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln.lower()]
        assert len(warnings) == 1, r.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 2
    assert home.status_for(user, env=env) == []


# ---------------------------------------------------------------------------
# Secret Service sessions


def _open_sessions(env: dict, action) -> list[str]:
    """The algorithms of the Secret Service sessions opened while `action` runs,
    as `dbus-monitor` on the test's session bus sees OpenSession calls."""
    import shutil
    import subprocess
    import time

    assert shutil.which("dbus-monitor"), "dbus-monitor (Debian: dbus) is needed"
    mon = subprocess.Popen(
        ["dbus-monitor", "--session", "type='method_call',interface='org.freedesktop.Secret.Service',member='OpenSession'"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        time.sleep(0.5)  # the monitor is registered before the action starts
        action()
        time.sleep(0.5)
    finally:
        mon.terminate()
        out = mon.communicate(timeout=10)[0]
    # `string "plain"` / `string "dh-ietf1024-sha256-aes128-cbc-pkcs7"`, the first argument.
    return [line.split('"')[1] for line in out.splitlines()
            if line.strip().startswith('string "') and ("plain" in line or "dh-" in line)]


def test_secret_service_hits_read_through_a_plain_session_and_writes_keep_dh(home, user, bed):
    """README, Security model: a hit skips the DH key exchange (over half of its
    time); the rare write keeps the encrypted session."""
    home.add_source_profile("work", user)
    env = {**home.env, "STSMFA_STORE": "secret-service"}
    miss = _open_sessions(env, lambda: home.run("credential-process", "work", "--mfa-code", home.code(user), env=env))
    assert "dh-ietf1024-sha256-aes128-cbc-pkcs7" in miss, miss
    hits = []
    hit = _open_sessions(env, lambda: hits.append(home.run("credential-process", "work", "-v", env=env)))
    assert hits[0].returncode == 0 and "cache hit" in hits[0].stderr.lower(), hits[0].stderr
    assert hit == ["plain"], hit
    assert sts_ok(bed, user) == 1
