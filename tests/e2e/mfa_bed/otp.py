"""RFC 6238 TOTP (HMAC-SHA1, 30-second steps, 6 digits), as virtual MFA devices use.

The one TOTP of the repository: the bed checks codes with it, the e2e tests and
their fake programs (tests/e2e/fake_bin) and bench/mfa_code.py make codes with
it. Those scripts load this file on its own (not through the mfa_bed package),
so it needs only the stdlib and imports nothing from the package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

STEP_SECONDS = 30
DIGITS = 6


def _key(seed: str) -> bytes:
    # Authenticator apps accept unpadded, lower-case or spaced base32; so do we.
    clean = seed.replace(" ", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def step_at(at: float | None = None) -> int:
    """The 30-second step number for unix time `at` (default now)."""
    return int((time.time() if at is None else at) // STEP_SECONDS)


def code_for_step(seed: str, step: int) -> str:
    digest = hmac.new(_key(seed), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def totp(seed: str, at: float | None = None, offset: int = 0) -> str:
    """The code for unix time `at` (default now), shifted by `offset` steps."""
    return code_for_step(seed, step_at(at) + offset)
