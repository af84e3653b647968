"""The Linux credential stores from the outside: a private D-Bus session with its
own gnome-keyring, and the Secret Service items and keyutils keys stsmfa
stored, to find, read and corrupt them.

The keyrings of a run are private (tests/run.sh starts the suite inside
`keyctl session -` and `dbus-run-session`) but shared by all its tests.
"""

from __future__ import annotations

import re
import subprocess
from typing import Mapping


# --------------------------------------------------------------------------
# A private D-Bus session with its own gnome-keyring


def keyring_session_argv(password: str, command: list[str]) -> list[str]:
    """argv that runs `command` in a new D-Bus session whose gnome-keyring was
    started with `--unlock` and `password` (a wrong one leaves an existing
    login keyring locked)."""
    script = (
        'printf %s "$0" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; '
        'exec "$@"'
    )
    return ["dbus-run-session", "--", "bash", "-c", script, password, *command]


# --------------------------------------------------------------------------
# Secret Service (secret-tool) and keyutils (keyctl)


def secret_service_items(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Items with attribute service=stsmfa: {path: {attr: value}} (secrets not kept).

    secret-tool prints attributes on stderr and the rest on stdout: unbuffered
    into one pipe keeps them in order."""
    cp = subprocess.run(
        ["stdbuf", "-o0", "-e0", "secret-tool", "search", "--all", "--unlock", "service", "stsmfa"],
        env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )
    items: dict[str, dict[str, str]] = {}
    cur: dict[str, str] | None = None
    for line in cp.stdout.splitlines():
        m = re.match(r"^\[(.+)\]$", line.strip())
        if m:
            cur = items.setdefault(m.group(1), {})
            continue
        m = re.match(r"^attribute\.(\S+) = (.*)$", line.strip())
        if m and cur is not None:
            cur[m.group(1)] = m.group(2)
    return items


def secret_service_replace(env: Mapping[str, str], attrs: Mapping[str, str], value: str) -> None:
    """Replace the item with exactly these attributes by one holding `value`."""
    argv: list[str] = []
    for k, v in attrs.items():
        argv += [k, v]
    subprocess.run(["secret-tool", "clear", *argv], env=dict(env), check=True, timeout=30,
                   capture_output=True, stdin=subprocess.DEVNULL)
    subprocess.run(["secret-tool", "store", "--label=stsmfa test garbage", *argv], env=dict(env),
                   input=value, text=True, check=True, timeout=30, capture_output=True)


def secret_service_lookup(env: Mapping[str, str], attrs: Mapping[str, str]) -> str | None:
    argv = ["secret-tool", "lookup"]
    for k, v in attrs.items():
        argv += [k, v]
    cp = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return cp.stdout if cp.returncode == 0 else None


def keyutils_keys(env: Mapping[str, str]) -> dict[int, str]:
    """User keys reachable from the session keyring: {id: description}."""
    seen: set[int] = set()
    found: dict[int, str] = {}

    def describe(kid: int) -> tuple[str, str] | None:
        cp = subprocess.run(["keyctl", "rdescribe", str(kid)], capture_output=True, text=True, env=dict(env))
        if cp.returncode != 0:
            return None
        parts = cp.stdout.strip().split(";", 4)
        return (parts[0], parts[4] if len(parts) > 4 else "")

    def walk(ring: str) -> None:
        cp = subprocess.run(["keyctl", "rlist", ring], capture_output=True, text=True, env=dict(env))
        if cp.returncode != 0:
            return
        for tok in cp.stdout.split():
            kid = int(tok)
            if kid in seen:
                continue
            seen.add(kid)
            d = describe(kid)
            if d is None:
                continue
            if d[0] == "keyring":
                walk(str(kid))
            elif d[0] == "user":
                found[kid] = d[1]

    walk("@s")
    return found


def keyutils_read(kid: int, env: Mapping[str, str]) -> str | None:
    cp = subprocess.run(["keyctl", "pipe", str(kid)], capture_output=True, env=dict(env))
    return cp.stdout.decode("utf-8", "replace") if cp.returncode == 0 else None


def keyutils_update(kid: int, value: str, env: Mapping[str, str]) -> None:
    subprocess.run(["keyctl", "pupdate", str(kid)], input=value.encode(), check=True, capture_output=True, env=dict(env))
