"""The bed's `Date` header skew: a client whose clock is off, seen from the
server, for `stsmfa doctor`'s clock check. Only replies to requests signed
with the chosen key move; everyone else's stay right.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed_clock.py
"""

from __future__ import annotations

import itertools
import time
from email.utils import parsedate_to_datetime

import pytest

from bed_clients import long_term
from mfa_bed import BedError, policies

_names = itertools.count()


def _user(bed):
    return bed.create_user(f"clock-{next(_names)}-{time.time_ns()}", policies.deny_all_except_listed_if_no_mfa())


def _date_of_reply(bed, user) -> float:
    sts = long_term(bed, user, "sts")
    reply = sts.get_caller_identity()
    date = reply["ResponseMetadata"]["HTTPHeaders"]["date"]
    return parsedate_to_datetime(date).timestamp()


def test_skew_moves_the_date_header_of_that_key_only(bed):
    skewed, other = _user(bed), _user(bed)
    bed.set_clock_skew(skewed.access_key_id, 45)
    try:
        assert abs(_date_of_reply(bed, skewed) - time.time() - 45) < 3
        assert abs(_date_of_reply(bed, other) - time.time()) < 3
        bed.set_clock_skew(skewed.access_key_id, -120)
        assert abs(_date_of_reply(bed, skewed) - time.time() + 120) < 3
    finally:
        bed.set_clock_skew(skewed.access_key_id, 0)
    assert abs(_date_of_reply(bed, skewed) - time.time()) < 3


def test_skew_needs_a_key_and_a_number(bed):
    with pytest.raises(BedError, match="access_key_id is required"):
        bed._call("POST", "clock-skew", {"seconds": 5})
    with pytest.raises(BedError, match="seconds must be a number"):
        bed._call("POST", "clock-skew", {"access_key_id": "AKIA", "seconds": "soon"})
