"""Fixtures for stsmfa's end-to-end tests: the tools, the MFA test bed and its
users, the hermetic `home` and the `store` parameter.

Run through `tests/run.sh`, which provides private keyrings (a keyutils session
keyring and a D-Bus session with an unlocked gnome-keyring). Under CI=true a
missing tool or keyring fails the test with the reason; elsewhere it is a skip.

The test files are named for the feature they test (test_credential_process.py,
test_faults.py, ...). Their helpers: harness.py (Home and its runners),
assertions.py, pty_driver.py, fake_endpoints.py, parallel.py, keyrings.py and
fake_programs.py with the scripts in fake_bin/. The bed's own tests are in
mfa_bed/tests/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import IN_CI, STSMFA_BIN, VENV_BIN, Home, missing, unique_name  # noqa: E402

STORES = ("secret-service", "keyutils")


def pytest_report_header(config):
    return [
        f"stsmfa binary: {STSMFA_BIN} ({'present' if STSMFA_BIN.exists() else 'MISSING'})",
        f"CI mode (missing tools fail): {IN_CI}",
        f"D-Bus session: {os.environ.get('DBUS_SESSION_BUS_ADDRESS', '(none)')}",
    ]


# ------------------------------------------------------------------ tools


@pytest.fixture(scope="session")
def stsmfa_bin() -> Path:
    if not STSMFA_BIN.is_file() or not os.access(STSMFA_BIN, os.X_OK):
        missing(f"{STSMFA_BIN} not built (run `cargo build`)")
    return STSMFA_BIN.resolve()


def _need_exe(path_or_name: str, why: str) -> str:
    found = path_or_name if os.path.isabs(path_or_name) and os.access(path_or_name, os.X_OK) \
        else shutil.which(path_or_name, path=f"{VENV_BIN}:/usr/bin:/bin")
    if not found:
        missing(f"{path_or_name} not found ({why})")
    return found


@pytest.fixture(scope="session")
def aws_cli() -> str:
    return _need_exe(str(VENV_BIN / "aws"), "the AWS CLI from tests/e2e/requirements.txt in target/e2e-venv")


@pytest.fixture(scope="session")
def boto3_available() -> None:
    cp = subprocess.run([str(VENV_BIN / "python"), "-c", "import boto3"], capture_output=True, text=True)
    if cp.returncode != 0:
        missing(f"boto3 not importable in target/e2e-venv: {cp.stderr.strip()}")


@pytest.fixture(scope="session")
def fish() -> str:
    return _need_exe("fish", "apt-get install fish")


@pytest.fixture(scope="session")
def keyctl() -> str:
    return _need_exe("keyctl", "apt-get install keyutils")


@pytest.fixture(scope="session")
def secret_service_ok() -> None:
    """A Secret Service answers on the session bus and takes a write."""
    _need_exe("secret-tool", "apt-get install libsecret-tools")
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        missing("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset); run through tests/run.sh")
    attrs = ["service", "stsmfa-e2e-probe", "username", "probe"]
    try:
        st = subprocess.run(["secret-tool", "store", "--label=stsmfa e2e probe", *attrs],
                            input="probe", capture_output=True, text=True, timeout=20)
        lk = subprocess.run(["secret-tool", "lookup", *attrs], capture_output=True, text=True,
                            timeout=20, stdin=subprocess.DEVNULL)
        subprocess.run(["secret-tool", "clear", *attrs], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        missing("Secret Service did not answer within 20 s")
    if st.returncode != 0 or lk.stdout != "probe":
        missing(f"Secret Service unusable (locked or absent): {st.stderr.strip()} {lk.stderr.strip()}")


@pytest.fixture(scope="session")
def keyutils_ok(keyctl) -> None:
    """Keys added to the session keyring can be read back (needs `keyctl session -`)."""
    add = subprocess.run([keyctl, "add", "user", "stsmfa-e2e-probe", "probe", "@s"],
                         capture_output=True, text=True)
    if add.returncode != 0:
        missing(f"keyutils: cannot add a key to the session keyring: {add.stderr.strip()}")
    kid = add.stdout.strip()
    rd = subprocess.run([keyctl, "pipe", kid], capture_output=True, text=True)
    subprocess.run([keyctl, "unlink", kid, "@s"], capture_output=True)
    if rd.returncode != 0 or rd.stdout != "probe":
        missing("keyutils: the session keyring is not readable (run inside `keyctl session -`, "
                f"as tests/run.sh does): {rd.stderr.strip()}")


# -------------------------------------------------------------- test bed


@pytest.fixture(scope="session")
def bed():
    try:
        from mfa_bed import Bed
    except ImportError as exc:  # the bed is part of the repo: never a skip
        pytest.fail(f"cannot import mfa_bed: {exc}", pytrace=False)
    b = Bed.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def make_user(bed):
    """make_user(policy=None, mfa=True) -> a fresh IAM user with its own device.

    Default policy: AWS's DenyAllExceptListedIfNoMFA example."""
    from mfa_bed import policies

    def make(policy=None, mfa: bool = True, prefix: str = "u"):
        if policy is None:
            policy = policies.deny_all_except_listed_if_no_mfa()
        return bed.create_user(unique_name(prefix), policy, mfa=mfa)

    return make


@pytest.fixture
def user(make_user):
    return make_user()


# ------------------------------------------------------------------- home


@pytest.fixture
def home(tmp_path, bed, stsmfa_bin):
    h = Home(root=tmp_path, bed=bed, bin=stsmfa_bin)
    yield h
    # Remove what this test cached from the shared keyrings of the run.
    stores = {h.env.get("STSMFA_STORE", "auto"), "keyutils"} - {"none"}
    for name in list(h.profiles):
        for store in stores:
            try:
                h.run("clear", name, env={"STSMFA_STORE": store}, timeout=15)
            except BaseException:  # noqa: BLE001 - cleanup only
                pass


@pytest.fixture(params=STORES)
def store(request, home):
    """Parametrise a test over the two Linux stores; sets STSMFA_STORE."""
    name = request.param
    if name == "secret-service":
        request.getfixturevalue("secret_service_ok")
    else:
        request.getfixturevalue("keyutils_ok")
    home.env["STSMFA_STORE"] = name
    return name
