"""The test bed's own tests: the server must enforce MFA the way AWS does, or
every end-to-end test built on it proves nothing.

They need the venv (moto, boto3, the AWS CLI) but neither stsmfa nor a
keyring, and run with the whole suite or alone:

    target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The directory that holds the mfa_bed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mfa_bed import Bed  # noqa: E402


@pytest.fixture(scope="module")
def bed():
    """One bed per test module, in place of the e2e suite's session-wide one."""
    os.environ.pop("AWS_CA_BUNDLE", None)
    server = Bed.start()
    yield server
    server.stop()
