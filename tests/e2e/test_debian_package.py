"""The Debian package (`cargo deb`, built by tests/run.sh from the debug
build into target/debian/): it installs with `dpkg -i`, puts both binaries in
/usr/bin, the man page where `man stsmfa` finds it, completions in Debian's
paths and the shell scripts in /usr/share/stsmfa; the installed stsmfa then
serves a session from the bed. The package is removed again afterwards."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from assertions import assert_session
from harness import REPO, Home, missing, sts_ok

DEB_DIR = REPO / "target" / "debian"
FILES = [
    "/usr/bin/stsmfa",
    "/usr/bin/stsmfa-sts",
    "/usr/share/man/man1/stsmfa.1.gz",
    "/usr/share/bash-completion/completions/stsmfa",
    "/usr/share/zsh/vendor-completions/_stsmfa",
    "/usr/share/fish/vendor_completions.d/stsmfa.fish",
    "/usr/share/stsmfa/stsmfa.bash",
    "/usr/share/stsmfa/stsmfa.zsh",
    "/usr/share/stsmfa/stsmfa.fish",
]


# dpkg runs ldconfig and start-stop-daemon from the sbin directories.
DPKG_ENV = {**os.environ, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def _run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=DPKG_ENV)


@pytest.fixture(scope="module")
def installed():
    debs = sorted(DEB_DIR.glob("stsmfa_*.deb"))
    if not debs:
        missing(f"no stsmfa_*.deb in {DEB_DIR} (tests/run.sh builds it with cargo deb)")
    if os.geteuid() != 0:
        missing("dpkg -i needs root")
    if _run("dpkg-query", "-W", "stsmfa").returncode == 0:
        pytest.fail("a stsmfa package is already installed on this machine; remove it first (dpkg -r stsmfa)",
                    pytrace=False)
    inst = _run("dpkg", "-i", str(debs[-1]))
    assert inst.returncode == 0, inst.stdout + inst.stderr
    try:
        yield debs[-1]
    finally:
        rm = _run("dpkg", "-r", "stsmfa")
        assert rm.returncode == 0, rm.stdout + rm.stderr


def test_package_holds_both_binaries_man_page_completions_and_scripts(installed):
    info = _run("dpkg-deb", "--field", str(installed), "Package", "Version", "Depends")
    assert info.returncode == 0, info.stderr
    assert "Package: stsmfa" in info.stdout and "libc6" in info.stdout, info.stdout
    listed = set(_run("dpkg", "-L", "stsmfa").stdout.split())
    for f in FILES:
        assert f in listed, f"{f} not in the package"
        assert Path(f).is_file(), f"{f} not installed"
    assert os.access("/usr/bin/stsmfa", os.X_OK) and os.access("/usr/bin/stsmfa-sts", os.X_OK)
    # completions call back the installed binary, not the build's
    for f in FILES[3:6]:
        text = Path(f).read_text()
        assert "/usr/bin/stsmfa" in text and str(REPO) not in text, f
    version = _run("/usr/bin/stsmfa", "--version")
    assert version.returncode == 0 and version.stdout.startswith("stsmfa "), version.stdout + version.stderr


def test_man_stsmfa_finds_the_page(installed):
    where = _run("man", "-w", "stsmfa")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == "/usr/share/man/man1/stsmfa.1.gz"
    page = subprocess.run(["man", "stsmfa"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "MANWIDTH": "100", "LANG": "C.UTF-8"})
    assert page.returncode == 0, page.stderr
    assert "credential-process" in page.stdout and "doctor" in page.stdout, page.stdout[:500]


def test_installed_stsmfa_serves_a_session(installed, tmp_path, bed, user):
    home = Home(root=tmp_path, bed=bed, bin=Path("/usr/bin/stsmfa"))
    prof = home.add_source_profile("work", user)
    home.add_process_profile("work-mfa", "work")
    try:
        first = home.run("credential-process", "work-mfa", "-v")
        assert first.returncode == 0, first.stderr
        assert "/usr/bin/stsmfa-sts" in first.stderr, "the miss was not handed to the installed stsmfa-sts"
        cred = json.loads(first.stdout)
        assert_session(cred, user, hours=12)
        again = home.run("credential-process", "work-mfa")
        assert again.returncode == 0 and json.loads(again.stdout) == cred
        assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1
        doc = home.run("doctor", "work-mfa")
        assert doc.returncode == 0, doc.stdout + doc.stderr
    finally:
        home.run("clear", "work")
