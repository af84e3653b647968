"""Programs that stand in for others: MFA code sources that behave like a person
or a hung dialog, and fake GUI/YubiKey programs (zenity, kdialog, osascript,
ykman) that log how stsmfa ran them.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any


_TOTP_PY = r'''
import base64, hashlib, hmac, struct, time
def totp(seed, offset=0):
    clean = seed.replace(" ", "").upper()
    key = base64.b32decode(clean + "=" * (-len(clean) % 8))
    step = int(time.time() // 30) + offset
    d = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = d[-1] & 0x0F
    return str((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 10 ** 6).zfill(6)
'''


def _write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{os.path.abspath(sys.executable)}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def authenticator_command(home: Any, user: Any, log: Path) -> str:
    """An mfa_process that behaves like an authenticator app: it prints the
    code of the current 30-second step, whatever was handed out before."""
    seed = home._seed_file(user)
    script = _write_script(
        home.tools / f"authenticator-{user.name}.py",
        _TOTP_PY
        + f"""
import sys, time
code = totp(open({str(seed)!r}).read().strip())
with open({str(log)!r}, "a") as f:
    f.write("%s %d\\n" % (code, int(time.time() // 30)))
print(code)
""",
    )
    return shlex.quote(str(script))


def hanging_command(log: Path) -> str:
    """An mfa_process that notes it started, then never answers (a person who
    walked away from the prompt)."""
    return f"echo started >> {shlex.quote(str(log))}; exec sleep 600"


def fake_program(directory: Path, name: str, seed_file: Path | None, log: Path,
                 output: str = "{code}", exit_code: int = 0) -> Path:
    """A fake `name` (zenity, kdialog, osascript, ykman...) in `directory`: it
    appends its argv (JSON) and whether it had a terminal to `log`, then
    prints `output` with {code} replaced by the current TOTP of `seed_file`."""
    return _write_script(
        directory / name,
        _TOTP_PY
        + f"""
import json, os, sys
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    tty = True
except OSError:
    tty = False
seed_file = {str(seed_file) if seed_file else None!r}
code = totp(open(seed_file).read().strip()) if seed_file else "000000"
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "tty": tty, "display": os.environ.get("DISPLAY")}}) + "\\n")
print({output!r}.replace("{{code}}", code))
sys.exit({exit_code})
""",
    )


def read_json_lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
