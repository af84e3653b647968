"""`stsmfa` serves cache hits on its own and hands everything that needs AWS
to `stsmfa-sts` next to it: a hit must not need the second binary, and a
miss without it must say what is missing."""

from __future__ import annotations

import json
import shutil

from assertions import assert_error
from harness import sts_ok


def test_a_hit_needs_only_stsmfa_and_a_miss_names_the_missing_binary(home, user, bed, tmp_path):
    prof = home.add_source_profile("work", user)
    first = home.credential_process("work")  # through stsmfa-sts: a miss
    assert sts_ok(bed, user) == 1

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(home.bin, lone / "stsmfa")  # without stsmfa-sts beside it

    hit = home._run([str(lone / "stsmfa"), "credential-process", "work"])
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout) == first

    miss = home._run([str(lone / "stsmfa"), "credential-process", "work", "--refresh"])
    assert_error(miss, "stsmfa-sts", hint=True)
    assert miss.stderr.startswith("stsmfa: error: cannot run "), miss.stderr
    assert home.calls(prof.log) == 1 and sts_ok(bed, user) == 1


def test_verbose_miss_says_it_hands_over(home, user):
    home.add_source_profile("work", user)
    cp = home.run("-v", "credential-process", "work")
    assert cp.returncode == 0, cp.stderr
    assert "handing over to" in cp.stderr and "stsmfa-sts" in cp.stderr, cp.stderr
    again = home.run("-v", "credential-process", "work")
    assert "cache hit" in again.stderr and "handing over" not in again.stderr, again.stderr
