"""mfa_process for bench/run.sh: appends a line to LOG, prints the current TOTP code.

Usage: python3 mfa_code.py SEED_FILE LOG_FILE   (RFC 6238: HMAC-SHA1, 30 s, 6 digits)
"""

import sys
import time
from pathlib import Path

# The repository's one TOTP module, loaded on its own (stdlib only).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e" / "mfa_bed"))
from otp import totp  # noqa: E402

seed_file, log_file = sys.argv[1:3]
code = totp(open(seed_file).read().strip())
with open(log_file, "a") as log:
    log.write(f"{time.time():.3f}\n")
print(code)
