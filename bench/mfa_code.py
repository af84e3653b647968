"""mfa_process for bench/run.sh: appends a line to LOG, prints the current TOTP code.

Usage: python3 mfa_code.py SEED_FILE LOG_FILE   (RFC 6238: HMAC-SHA1, 30 s, 6 digits)
"""

import base64
import hashlib
import hmac
import struct
import sys
import time

seed_file, log_file = sys.argv[1:3]
seed = open(seed_file).read().strip().replace(" ", "").upper()
key = base64.b32decode(seed + "=" * (-len(seed) % 8))
digest = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
offset = digest[-1] & 0x0F
code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6
with open(log_file, "a") as log:
    log.write(f"{time.time():.3f}\n")
print(f"{code:06d}")
