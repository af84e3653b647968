"""Long-term keys out of plain files (issue 15): `add`, `import`, `rotate`,
`remove`, `list`, the key store (`--key-store`), its encrypted `file` store,
and that no plain file, stderr or argument ever holds the long-term secret.

Most tests use `--key-store file` with STSMFA_FILE_PASSPHRASE, as on a
headless SSH box; one uses the Secret Service, as on a desktop."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from assertions import assert_error
from harness import wait_until
from pty_driver import PtyProcess

PASSPHRASE = "correct horse battery staple 15"


@pytest.fixture
def keys_home(home):
    """A home whose key store is the encrypted file, passphrase from the environment."""
    home.env["STSMFA_KEY_STORE"] = "file"
    home.env["STSMFA_FILE_PASSPHRASE"] = PASSPHRASE
    home.data = home.home / ".local" / "share" / "stsmfa"
    return home


def keys_env(user) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": user.access_key_id, "AWS_SECRET_ACCESS_KEY": user.secret_access_key}


def stored_profile(home, name: str, user, *args: str):
    """`name` as SPEC lays it out, but its keys added to the key store and
    none in the credentials file."""
    home.add_source_profile(name, user)
    home.credentials.remove_section(name)
    home._write_files()
    cp = home.run("add", name, "--env", *args, env=keys_env(user))
    assert cp.returncode == 0, cp.stderr
    return cp


def sts_as(bed, key_id: str, secret: str, token: str | None = None, service: str = "sts"):
    return boto3.client(
        service, endpoint_url=bed.endpoint, region_name="us-east-1",
        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )


def works(bed, key_id: str, secret: str) -> bool:
    try:
        sts_as(bed, key_id, secret).get_caller_identity()
        return True
    except ClientError:
        return False


def no_plain_secret(home, *secrets: str) -> None:
    for p in [home.config_path, home.credentials_path]:
        text = p.read_text() if p.exists() else ""
        for s in secrets:
            assert s not in text, f"secret in {p}"


def file_entry(home) -> Path:
    return home.data / "keys.age"


# ------------------------------------------------------------------ add


def test_add_on_the_terminal_then_the_aws_cli_and_boto3_with_no_key_in_any_file(keys_home, user, bed, aws_cli):
    home = keys_home
    home.add_source_profile("work", user)
    home.credentials.remove_section("work")
    home._write_files()
    home.add_process_profile("work-mfa", "work")
    term = PtyProcess([str(home.bin), "add", "work"], env=home._env({"TERM": "dumb"}), cwd=home.root)
    try:
        term.expect("Access key ID for profile work: ")
        term.sendline(user.access_key_id)
        term.expect(r"Secret access key \(not shown\): ")
        term.sendline(user.secret_access_key)
        assert term.wait(60) == 0, term.text
    finally:
        term.close()
    assert user.secret_access_key not in term.text, "the secret was echoed"
    assert user.arn in term.text
    assert "stored the key AKIA" in term.text and "(file)" in term.text
    no_plain_secret(home, user.secret_access_key)
    assert user.access_key_id not in home.credentials_path.read_text()

    cp = home.run("credential-process", "work", "-v")
    assert cp.returncode == 0, cp.stderr
    assert "from the key store (file)" in cp.stderr
    ident = home.aws("sts", "get-caller-identity", profile="work-mfa")
    assert ident.returncode == 0, ident.stderr
    assert json.loads(ident.stdout)["Arn"] == user.arn
    lu = home.aws("iam", "list-users", profile="work-mfa")
    assert lu.returncode == 0, lu.stderr
    b3 = home.boto3(
        "import boto3; print(boto3.Session(profile_name='work-mfa').client('sts').get_caller_identity()['Arn'])"
    )
    assert b3.returncode == 0, b3.stderr
    assert b3.stdout.strip() == user.arn


def test_add_with_env_creates_the_missing_profile_and_refuses_session_keys(keys_home, make_user, bed, aws_cli):
    home = keys_home
    user = make_user()
    cp = home.run("add", "fresh", "--env", "--yes", env=keys_env(user))
    assert cp.returncode == 0, cp.stderr
    assert "[profile fresh]" in home.config_path.read_text()
    home.set_config("profile fresh", {"mfa_serial": user.serial, "region": "us-east-1",
                                      "mfa_process": home.mfa_process(user)})
    assert home.credential_process("fresh")["AccessKeyId"].startswith("ASIA")

    asia = home.run("add", "tmp", "--env", env={"AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE12",
                                                  "AWS_SECRET_ACCESS_KEY": "x" * 40})
    assert_error(asia, "temporary (session) key", hint=True)
    bad = home.run("add", "tmp", "--env", env={"AWS_ACCESS_KEY_ID": user.access_key_id,
                                                 "AWS_SECRET_ACCESS_KEY": "wrong" * 8})
    assert_error(bad, hint=True)
    assert "nothing was stored" in bad.stderr
    assert "tmp" not in home.run("list").stdout


def test_keyutils_is_refused_as_a_key_store_with_the_reason(keys_home, user):
    home = keys_home
    for args, env in [(["--key-store", "keyutils"], None), ([], {"STSMFA_KEY_STORE": "keyutils"})]:
        cp = home.run("add", "work", "--env", *args, env={**keys_env(user), **(env or {})})
        assert_error(cp, "keyutils cannot hold long-term keys", "vanish at reboot", code=2, hint=True)
        assert "--key-store file" in cp.stderr
    assert not file_entry(home).exists()


def test_a_desktop_keeps_keys_in_the_secret_service(home, user, secret_service_ok, aws_cli):
    home.env["STSMFA_KEY_STORE"] = "auto"
    stored_profile(home, "work", user)
    lst = json.loads(home.run("list", "--json").stdout)
    assert [(r["profile"], r["key_store"]) for r in lst] == [("work", "secret-service")]
    cp = home.run("credential-process", "work", "-v")
    assert cp.returncode == 0, cp.stderr
    assert "from the key store (secret-service)" in cp.stderr
    # `clear` of sessions never touches the keys (their own service name).
    assert home.run("clear", "--all").returncode == 0
    assert home.run("credential-process", "work").returncode == 0
    assert home.run("remove", "work", "--yes").returncode == 0


# --------------------------------------------------------------- import

CREDENTIALS = """# my keys, by hand
[default]
region=us-east-1

[work]
aws_access_key_id = {work_id}
aws_secret_access_key={work_secret}
; a comment inside
output   =json

[ play ]
# odd spacing
aws_access_key_id   =   {play_id}
aws_secret_access_key	=	{play_secret}
region = eu-west-1
[temp]
aws_access_key_id = ASIATEMPORARYKEY0001
aws_secret_access_key = tempsecret
aws_session_token = tok
"""


def test_import_moves_keys_and_keeps_every_other_byte_and_the_mode(keys_home, make_user, bed, aws_cli):
    home = keys_home
    work, play = make_user(), make_user()
    home.add_source_profile("work", work)
    home.add_source_profile("play", play)
    home.add_process_profile("work-mfa", "work")
    # Written last: the harness rewrites both files whenever it sets a key.
    text = CREDENTIALS.format(work_id=work.access_key_id, work_secret=work.secret_access_key,
                              play_id=play.access_key_id, play_secret=play.secret_access_key)
    home.credentials_path.write_text(text)
    home.credentials_path.chmod(0o640)

    cp = home.run("import", "work", "play", "temp")
    assert cp.returncode == 0, cp.stderr
    assert "skipped profile temp: it holds temporary credentials (aws_session_token)" in cp.stderr
    assert f"moved the key {work.access_key_id[:4]}" in cp.stderr and "to the key store (file)" in cp.stderr
    expected = "".join(
        line for line in text.splitlines(keepends=True)
        if not (line.lstrip().lower().startswith(("aws_access_key_id", "aws_secret_access_key"))
                and "ASIA" not in line and "tempsecret" not in line)
    )
    assert home.credentials_path.read_text() == expected
    assert stat.S_IMODE(home.credentials_path.stat().st_mode) == 0o640
    # No backup or temp file with the secret anywhere in ~/.aws.
    for p in home.aws_dir.iterdir():
        assert work.secret_access_key not in p.read_text(errors="replace"), p
    assert sorted(p.name for p in home.aws_dir.iterdir()) == ["config", "credentials"]

    v = home.run("credential-process", "work", "-v")
    assert v.returncode == 0, v.stderr
    assert "from the key store (file)" in v.stderr
    ident = home.aws("sts", "get-caller-identity", profile="work-mfa")
    assert ident.returncode == 0, ident.stderr
    assert json.loads(ident.stdout)["Arn"] == work.arn
    assert home.credential_process("play")["AccessKeyId"].startswith("ASIA")
    rows = {r["profile"]: r for r in json.loads(home.run("list", "--json").stdout)}
    assert set(rows) == {"work", "play"}


def test_keys_in_both_places_use_the_store_and_warn(keys_home, user, bed):
    home = keys_home
    home.add_source_profile("work", user)
    cp = home.run("add", "work", "--env", env=keys_env(user))
    assert cp.returncode == 0, cp.stderr
    assert "the AWS files still hold a key for profile work" in cp.stderr
    # The file's copy is now wrong: the store's must be the one used.
    home.set_credentials("work", {"aws_secret_access_key": "not-the-secret-anymore"})
    got = home.run("credential-process", "work", "-v")
    assert got.returncode == 0, got.stderr
    assert got.stderr.count("has keys in the key store and in the AWS credentials file") == 1
    assert "from the key store (file)" in got.stderr


# --------------------------------------------------------------- rotate


def test_rotate_under_deny_all_except_listed_if_no_mfa(keys_home, user, bed, aws_cli):
    home = keys_home
    stored_profile(home, "work", user)
    home.add_process_profile("work-mfa", "work")
    old_session = home.credential_process("work")
    assert home.aws("iam", "list-users", profile="work-mfa").returncode == 0

    cp = home.run("rotate", "work", "-v")
    assert cp.returncode == 0, cp.stderr
    keys = bed.access_keys(user.name)
    assert len(keys) == 1 and keys[0] != user.access_key_id, keys
    new_id = keys[0]
    assert "rotated the key of profile work" in cp.stderr
    assert not works(bed, user.access_key_id, user.secret_access_key), "the old key still works"
    assert home.status_for(user) == [], "the old sessions are gone"
    rows = json.loads(home.run("list", "--json").stdout)
    assert rows[0]["access_key_id"] == f"{new_id[:4]}…{new_id[-4:]}" and rows[0]["rotated"]

    new_session = home.credential_process("work")
    assert new_session["AccessKeyId"] != old_session["AccessKeyId"]
    info = bed.session_info(new_session["AccessKeyId"])
    assert info["user"] == user.name and info["mfa"] is True
    ident = home.aws("sts", "get-caller-identity", profile="work-mfa")
    assert ident.returncode == 0, ident.stderr


def test_rotate_interrupted_after_create_access_key_is_finished_by_the_next_run(keys_home, user, bed):
    home = keys_home
    stored_profile(home, "work", user)
    home.credential_process("work")
    bed.delay("DeleteAccessKey", 20, drop=True)
    proc = subprocess.Popen([str(home.bin), "rotate", "work"], env=home._env(None), cwd=home.root,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert wait_until(lambda: "DeleteAccessKey" in bed.held(), timeout=60), proc.stderr
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    both = bed.access_keys(user.name)
    assert len(both) == 2 and user.access_key_id in both
    new_id = next(k for k in both if k != user.access_key_id)
    # The store already holds the new key: it works for sessions now.
    assert home.run("clear", "work").returncode == 0
    cp = home.run("credential-process", "work", "-v")
    assert cp.returncode == 0, cp.stderr
    assert new_id[-4:] in cp.stderr

    again = home.run("rotate", "work")
    assert again.returncode == 0, again.stderr
    assert "finishing the rotation" in again.stderr
    assert bed.access_keys(user.name) == [new_id]
    assert not works(bed, user.access_key_id, user.secret_access_key)
    assert home.credential_process("work")["AccessKeyId"].startswith("ASIA")


def test_rotate_with_two_keys_names_the_unknown_one_and_changes_nothing(keys_home, user, bed):
    home = keys_home
    stored_profile(home, "work", user)
    session = sts_as(bed, user.access_key_id, user.secret_access_key).get_session_token(
        SerialNumber=user.serial, TokenCode=home.code(user))["Credentials"]
    iam = sts_as(bed, session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"], "iam")
    other = iam.create_access_key(UserName=user.name)["AccessKey"]["AccessKeyId"]
    cp = home.run("rotate", "work")
    assert_error(cp, "already has two access keys", other, hint=True)
    assert sorted(bed.access_keys(user.name)) == sorted([user.access_key_id, other])


def test_rotate_keys_in_the_credentials_file_rewrites_the_two_lines(home, user, bed):
    home.add_source_profile("work", user)
    before = home.credentials_path.read_text()
    cp = home.run("rotate", "work")
    assert cp.returncode == 0, cp.stderr
    new_id = bed.access_keys(user.name)
    assert len(new_id) == 1 and new_id[0] != user.access_key_id
    after = home.credentials_path.read_text()
    assert new_id[0] in after and user.secret_access_key not in after
    assert len(after.splitlines()) == len(before.splitlines())
    assert home.credential_process("work")["AccessKeyId"].startswith("ASIA")
    assert sorted(p.name for p in home.aws_dir.iterdir()) == ["config", "credentials"]


# ------------------------------------------------------- remove and list


def test_remove_deletes_the_keys_and_the_sessions(keys_home, user):
    home = keys_home
    stored_profile(home, "work", user)
    home.credential_process("work")
    asked = home.run("remove", "work")
    assert_error(asked, "there is no terminal", hint=True)
    assert home.status_for(user) != []
    cp = home.run("remove", "work", "--yes")
    assert cp.returncode == 0, cp.stderr
    assert home.status_for(user) == []
    assert json.loads(home.run("list", "--json").stdout) == []
    gone = home.run("credential-process", "work")
    assert_error(gone, "has no long-term access key", hint=True)
    assert "stsmfa add work" in gone.stderr
    assert_error(home.run("remove", "work", "--yes"), "has no keys in the key store", hint=True)


def test_list_shows_masked_keys_store_dates_and_sessions_never_a_secret(keys_home, make_user):
    home = keys_home
    work, play = make_user(), make_user()
    stored_profile(home, "work", work)
    stored_profile(home, "play", play)
    home.credential_process("work")
    rows = {r["profile"]: r for r in json.loads(home.run("list", "--json").stdout)}
    assert rows["work"]["access_key_id"] == f"{work.access_key_id[:4]}…{work.access_key_id[-4:]}"
    assert rows["work"]["key_store"] == "file"
    assert rows["work"]["session_cached"] is True and rows["play"]["session_cached"] is False
    assert rows["work"]["added"].endswith("Z") and rows["work"]["rotated"] is None
    table = home.run("list")
    assert table.returncode == 0
    assert "PROFILE" in table.stdout and "cached" in table.stdout
    for u in (work, play):
        assert u.access_key_id not in table.stdout + json.dumps(rows)
        assert u.secret_access_key not in table.stdout + json.dumps(rows)


# ------------------------------------------------------------ file store


def test_file_store_round_trip_mode_and_no_plain_secret(keys_home, user):
    home = keys_home
    stored_profile(home, "work", user)
    f = file_entry(home)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    data = f.read_bytes()
    assert data.startswith(b"age-encryption.org/v1")
    assert user.secret_access_key.encode() not in data and user.access_key_id.encode() not in data
    assert home.credential_process("work")["AccessKeyId"].startswith("ASIA")


def test_file_store_wrong_passphrase_and_damaged_file_change_nothing(keys_home, user):
    home = keys_home
    stored_profile(home, "work", user)
    f = file_entry(home)
    before = f.read_bytes()
    wrong = home.run("credential-process", "work", env={"STSMFA_FILE_PASSPHRASE": "not it"})
    assert_error(wrong, "wrong passphrase", hint=True)
    add = home.run("add", "other", "--env", env={**keys_env(user), "STSMFA_FILE_PASSPHRASE": "not it"})
    assert add.returncode == 1 and "error: cannot decrypt the key file" in add.stderr, add.stderr
    assert f.read_bytes() == before
    damaged = bytearray(before)
    damaged[-3] ^= 0xFF
    f.write_bytes(bytes(damaged))
    cp = home.run("credential-process", "work")
    assert_error(cp, "is damaged", hint=True)
    assert f.read_bytes() == bytes(damaged), "never overwritten"


def test_file_store_two_processes_writing_at_once_lose_nothing(keys_home, make_user):
    home = keys_home
    users = [make_user() for _ in range(3)]
    for i, u in enumerate(users):
        home.add_source_profile(f"p{i}", u)
        home.credentials.remove_section(f"p{i}")
    home._write_files()
    procs = [
        subprocess.Popen([str(home.bin), "add", f"p{i}", "--env"], env=home._env(keys_env(u)),
                         cwd=home.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        for i, u in enumerate(users)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    rows = {r["profile"] for r in json.loads(home.run("list", "--json").stdout)}
    assert rows == {"p0", "p1", "p2"}
    for i in range(3):
        assert home.credential_process(f"p{i}")["AccessKeyId"].startswith("ASIA")


def test_the_passphrase_is_asked_on_the_terminal_only_on_a_miss(keys_home, user):
    home = keys_home
    stored_profile(home, "work", user)
    env = home._env({"TERM": "dumb", "STSMFA_FILE_PASSPHRASE": None})
    term = PtyProcess([str(home.bin), "credential-process", "work"], env=env, cwd=home.root)
    try:
        term.expect("Passphrase for the key file")
        term.sendline(PASSPHRASE)
        assert term.wait(60) == 0, term.text
    finally:
        term.close()
    assert PASSPHRASE not in term.text, "the passphrase was echoed"
    # A hit: no passphrase, no terminal.
    hit = home.run("credential-process", "work", env={"STSMFA_FILE_PASSPHRASE": None})
    assert hit.returncode == 0, hit.stderr
    # A miss with neither: a clear error.
    home.run("clear", "work")
    miss = home.run("credential-process", "work", env={"STSMFA_FILE_PASSPHRASE": None})
    assert_error(miss, "needs its passphrase", hint=True)
    assert "STSMFA_FILE_PASSPHRASE" in miss.stderr


def test_the_passphrase_never_reaches_a_child(keys_home, user):
    home = keys_home
    probe = home.tools / "env-of-mfa-process"
    stored_profile(home, "work", user)
    home.set_config("profile work", {
        "mfa_process": f"env > {probe}; {home.mfa_process(user)}",
    })
    ex = home.run("exec", "work", "--", "env")
    assert ex.returncode == 0, ex.stderr
    assert "AWS_SESSION_TOKEN=" in ex.stdout
    assert "STSMFA_FILE_PASSPHRASE" not in ex.stdout and PASSPHRASE not in ex.stdout
    assert probe.exists()
    assert PASSPHRASE not in probe.read_text() and "STSMFA_FILE_PASSPHRASE" not in probe.read_text()
    # exec on a cache hit (the small binary) too
    hit = home.run("exec", "work", "--", "env")
    assert hit.returncode == 0 and PASSPHRASE not in hit.stdout


# ----------------------------------------------------- the secret nowhere


def _files(*roots: Path):
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink():
                    yield p


def test_the_long_term_secret_is_nowhere_but_encrypted_after_a_whole_run(keys_home, make_user, bed, aws_cli):
    home = keys_home
    work, play = make_user(), make_user()
    home.add_source_profile("work", work)
    home.add_source_profile("play", play)
    home.add_process_profile("work-mfa", "work")
    assert home.run("import", "--all").returncode == 0
    for args in [("credential-process", "work", "-v"), ("env", "play", "-v"), ("list",),
                 ("status", "-v"), ("rotate", "work", "-v"), ("credential-process", "work", "-v")]:
        cp = home.run(*args)
        assert cp.returncode == 0, (args, cp.stderr)
    assert home.aws("sts", "get-caller-identity", profile="work-mfa").returncode == 0
    ps = home.run("exec", "play", "-v", "--", "sh", "-c",
                  'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done')
    assert ps.returncode == 0, ps.stderr
    new_id = bed.access_keys(work.name)[0]
    secrets = {"work secret": work.secret_access_key, "play secret": play.secret_access_key,
               "passphrase": PASSPHRASE}
    for label, s in secrets.items():
        assert s not in ps.stdout, f"{label} in a process argument"
        assert s not in home.all_stderr(), f"{label} on stderr"
    roots = [home.home, home.state, home.tmp, home.tools]
    if os.environ.get("XDG_RUNTIME_DIR"):
        roots.append(Path(os.environ["XDG_RUNTIME_DIR"]))
    hits = [f"{label} in {p}" for p in _files(*roots) for label, s in secrets.items()
            if s.encode() in p.read_bytes()]
    assert hits == [], hits
    # The rotated key's secret is only in the encrypted file: the store gives it back.
    assert file_entry(home).exists()
    assert new_id not in home.credentials_path.read_text()
    assert home.run("remove", "work", "--yes").returncode == 0
    assert home.run("remove", "play", "--yes").returncode == 0
