"""The admin's half of an MFA rollout (issue 16): `stsmfa admin policy|setup|onboard|sync`
on a bed of its own (sync acts on every user of the account, so the suite's shared
bed with the other tests' users will not do).

The story: `admin setup` creates the policies and groups; `admin onboard bob` gives
bob a temporary password and a key; bob changes his password and enrolls his device
with nothing else allowed; `admin sync` moves him to the enrolled group, where his
stsmfa session can use his extra group while his long-term keys still cannot.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time

import boto3
import pytest

from assertions import assert_error
from fake_endpoints import FakeEndpoint, closed_port, sts_error_xml
from harness import Home
from mfa_bed import Bed, policies
from mfa_bed.otp import code_for_step, step_at, totp
from pty_driver import PtyProcess

ACCOUNT = "123456789012"
WRITE_PREFIXES = ("Create", "Add", "Remove", "Update", "Delete", "Attach", "Detach", "Put", "Tag")
EXEMPT = [{"Key": "stsmfa:exempt", "Value": "true"}]


@pytest.fixture(scope="module")
def rollout_bed():
    bed = Bed.start()
    yield bed
    bed.stop()


class Account:
    """A fresh account on the module's bed: `root` (allow all, tagged exempt) for the
    test's own set-up calls, and the admin profile `admin` (long-term keys, --no-mfa)."""

    def __init__(self, bed: Bed, home: Home):
        self.bed, self.home = bed, home
        self.root = bed.create_user("root", policies.allow_all(), mfa=False)
        self.iam = self.client(self.root, "iam")
        self.iam.tag_user(UserName="root", Tags=EXEMPT)
        self.admin = bed.create_user("admin", policies.allow_all(), mfa=False)
        self.iam.tag_user(UserName="admin", Tags=EXEMPT)
        home.add_source_profile("admin", self.admin, mfa_serial=False, mfa_process=False)

    def client(self, user=None, service="iam", creds=None):
        if creds is not None:
            key, secret, token = creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")
        else:
            key, secret, token = user.access_key_id, user.secret_access_key, None
        return boto3.client(
            service, endpoint_url=self.bed.endpoint, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
        )

    def admin_run(self, *args: str, mfa: bool = False):
        extra = [] if mfa else ["--no-mfa"]
        return self.home.run("admin", *args, "--profile", "admin", *extra)

    def groups_of(self, user: str) -> set[str]:
        return {g["GroupName"] for g in self.iam.list_groups_for_user(UserName=user)["Groups"]}

    def calls(self) -> dict[str, int]:
        return dict(self.bed.stats()["iam_calls"])

    def extra_group(self, name: str = "Extra") -> None:
        """A group whose policy allows s3:ListAllMyBuckets (no MFA condition of its own)."""
        self.iam.create_group(GroupName=name)
        self.iam.put_group_policy(
            GroupName=name, PolicyName="list-buckets",
            PolicyDocument=json.dumps(policies.allow_actions(["s3:ListAllMyBuckets"])),
        )


def writes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The IAM write calls made between two stats() snapshots."""
    return {
        action: after[action] - before.get(action, 0)
        for action in after
        if action.startswith(WRITE_PREFIXES) and after[action] != before.get(action, 0)
    }


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {a: after[a] - before.get(a, 0) for a in after if after[a] != before.get(a, 0)}


@pytest.fixture
def account(tmp_path, rollout_bed, stsmfa_bin):
    rollout_bed.reset()
    home = Home(root=tmp_path, bed=rollout_bed, bin=stsmfa_bin)
    acct = Account(rollout_bed, home)
    yield acct
    for name in list(home.profiles):
        for store in ("auto", "keyutils"):
            try:
                home.run("clear", name, env={"STSMFA_STORE": store}, timeout=15)
            except BaseException:  # noqa: BLE001 - cleanup only
                pass


def handover(stdout: str) -> dict[str, str]:
    fields = {
        "url": r"Sign-in URL:\s+(\S+)",
        "user": r"User name:\s+(\S+)",
        "password": r"Temporary password:\s+(\S+)",
        "key_id": r"Access key ID:\s+(\S+)",
        "secret": r"Secret access key:\s+(\S+)",
    }
    found = {}
    for k, pattern in fields.items():
        m = re.search(pattern, stdout)
        if m:
            found[k] = m.group(1)
    return found


def setup_ok(account: Account, *extra: str) -> str:
    cp = account.admin_run("setup", "--yes", *extra)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def onboard(account: Account, user: str, *extra: str) -> dict[str, str]:
    cp = account.admin_run("onboard", user, *extra)
    assert cp.returncode == 0, cp.stderr
    h = handover(cp.stdout)
    assert h["user"] == user and h["password"], cp.stdout
    return h


def enroll(home: Home, profile: str) -> tuple[str, str]:
    """`stsmfa enroll PROFILE --yes` in a terminal: reads the secret, types two
    consecutive codes; returns (seed, serial)."""
    term = PtyProcess([str(home.bin), "enroll", profile, "--yes", "--show-secret"],
                      env=home._env({"TERM": "dumb"}), cwd=home.root)
    try:
        seed = term.expect(r"Secret \(base32\): ([A-Z2-7]+=*)(?=\s)", timeout=60).group(1)
        now = step_at()
        serial = term.expect(rf"MFA code for profile {profile} \(([^)]*)\): ", timeout=30).group(1)
        term.sendline(code_for_step(seed, now - 1))
        term.expect(rf"MFA code for profile {profile} \(([^)]*)\): ", timeout=30)
        term.sendline(code_for_step(seed, now))
        rc = term.wait(60)
    finally:
        term.close()
    assert rc == 0, term.text
    return seed, serial


def aws_error(cp) -> str:
    assert cp.returncode != 0, cp.stdout
    return cp.stderr


def files_containing(root, needle: str, skip: tuple[str, ...] = ()) -> list[str]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if p in skip:
                continue
            try:
                with open(p, "rb") as fh:
                    if needle.encode() in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


# ---------------------------------------------------------------------------- story


def test_rollout_story_first_login_enroll_sync_then_the_extra_group_with_mfa_only(account):
    home, bed = account.home, account.bed
    # the admin works under the MFA policy itself: one code, then the cached session
    mfa_admin = bed.create_user("mfa-admin", policies.deny_all_except_listed_if_no_mfa(), mfa=True)
    admin_profile = home.add_source_profile("mfa-admin", mfa_admin)
    run = lambda *a: home.run("admin", *a, "--profile", "mfa-admin")  # noqa: E731

    cp = run("setup", "--yes")
    assert cp.returncode == 0, cp.stderr
    for line in ("created policy stsmfa-first-login", "created group NotYetLoginUsers",
                 "attached policy stsmfa-first-login to group NotYetLoginUsers",
                 "attached policy stsmfa-enrolled to group MFARequired",
                 "attached policy stsmfa-force-mfa to group ForceMFA",
                 "turned on AllowUsersToChangePassword"):
        assert line in cp.stdout, cp.stdout
    assert account.iam.get_account_password_policy()["PasswordPolicy"]["AllowUsersToChangePassword"] is True
    account.extra_group("Extra")

    cp = run("onboard", "bob", "--access-key", "--group", "Extra")
    assert cp.returncode == 0, cp.stderr
    h = handover(cp.stdout)
    assert h["url"] == f"https://{ACCOUNT}.signin.aws.amazon.com/console"
    assert h["key_id"].startswith("AKIA") and h["secret"]
    assert "stsmfa enroll" in cp.stdout
    assert account.groups_of("bob") == {"NotYetLoginUsers", "Extra"}
    profile = account.iam.get_login_profile(UserName="bob")["LoginProfile"]
    assert profile["PasswordResetRequired"] is True

    # bob, with his key and no MFA: the password change works, little else does
    home.set_credentials("bob", {"aws_access_key_id": h["key_id"], "aws_secret_access_key": h["secret"]})
    home.set_config("profile bob", {"region": "us-east-1"})
    new_password = "Bobs-own-Passw0rd!"
    cp = home.aws("iam", "change-password", "--old-password", h["password"], "--new-password", new_password,
                  profile="bob")
    assert cp.returncode == 0, cp.stderr
    assert account.iam.get_login_profile(UserName="bob")["LoginProfile"]["PasswordResetRequired"] is False
    assert "AccessDenied" in aws_error(home.aws("s3api", "list-buckets", profile="bob"))
    assert "AccessDenied" in aws_error(home.aws("iam", "list-users", profile="bob"))
    assert "AccessDenied" in aws_error(home.aws("iam", "create-access-key", profile="bob"))

    seed, serial = enroll(home, "bob")
    assert serial == f"arn:aws:iam::{ACCOUNT}:mfa/bob"

    cp = run("sync")
    assert cp.returncode == 0, cp.stderr
    assert "moved bob from NotYetLoginUsers to MFARequired (MFA active)" in cp.stdout, cp.stdout
    assert account.groups_of("bob") == {"MFARequired", "Extra"}
    assert "mfa-admin" not in cp.stdout  # the caller itself is never moved

    # with an MFA session (credential_process), the extra group's permission works
    home.add_process_profile("bob-mfa", "bob")
    creds = home.credential_process("bob", env={"STSMFA_MFA_CODE": totp(seed, offset=1)})
    assert bed.session_info(creds["AccessKeyId"])["mfa"] is True
    cp = home.aws("s3api", "list-buckets", profile="bob-mfa")
    assert cp.returncode == 0, cp.stderr
    # ... and the long-term keys still cannot
    assert "AccessDenied" in aws_error(home.aws("s3api", "list-buckets", profile="bob"))

    # one MFA prompt for all of the admin's commands
    assert home.calls(admin_profile.log) == 1
    # neither password is anywhere on disk or in stderr
    for secret in (h["password"], new_password):
        assert files_containing(home.root, secret) == []
        assert secret not in home.all_stderr()
    assert h["secret"] not in home.all_stderr()


def test_the_aws_sample_policy_unchanged_denies_the_first_password_change(account):
    setup_ok(account)
    iam = account.iam
    cp = account.home.run("admin", "policy", "--variant", "first-login")
    assert cp.returncode == 0, cp.stderr
    first_login = json.loads(cp.stdout)
    for name, policy in (("sample", policies.self_service_only()), ("variant", first_login)):
        user = account.bed.create_user(name, policy, mfa=False)
        iam.create_login_profile(UserName=name, Password="Temp-Passw0rd-1!", PasswordResetRequired=True)
        me = account.client(user)
        if name == "sample":
            with pytest.raises(Exception) as info:
                me.change_password(OldPassword="Temp-Passw0rd-1!", NewPassword="New-Passw0rd-2!")
            assert "AccessDenied" in str(info.value) and "explicit deny" in str(info.value)
        else:
            me.change_password(OldPassword="Temp-Passw0rd-1!", NewPassword="New-Passw0rd-2!")
            # and still nothing else without MFA
            with pytest.raises(Exception) as info:
                me.list_users()
            assert "AccessDenied" in str(info.value)


def test_force_mfa_confines_a_user_without_mfa_until_enroll_then_sync_frees_him(account):
    home, iam = account.home, account.iam
    setup_ok(account)
    account.extra_group("Extra")
    eve = account.bed.create_user("eve", None, mfa=False)
    iam.add_user_to_group(GroupName="Extra", UserName="eve")
    account.client(eve, "s3").list_buckets()  # before the rollout: allowed

    cp = account.admin_run("sync")
    assert cp.returncode == 0, cp.stderr
    assert "added eve to ForceMFA (no MFA device)" in cp.stdout, cp.stdout
    assert "root" not in cp.stdout and "admin" not in cp.stdout  # tagged stsmfa:exempt=true
    assert account.groups_of("eve") == {"Extra", "ForceMFA"}

    home.add_source_profile("eve", eve, mfa_serial=False, mfa_process=False)
    assert "AccessDenied" in aws_error(home.aws("s3api", "list-buckets", profile="eve"))
    assert "AccessDenied" in aws_error(home.aws("iam", "list-users", profile="eve"))
    assert "AccessDenied" in aws_error(home.aws("iam", "create-access-key", profile="eve"))
    seed, _serial = enroll(home, "eve")

    cp = account.admin_run("sync")
    assert cp.returncode == 0, cp.stderr
    assert "moved eve from ForceMFA to MFARequired (MFA active)" in cp.stdout, cp.stdout
    assert account.groups_of("eve") == {"Extra", "MFARequired"}
    home.add_process_profile("eve-mfa", "eve")
    home.credential_process("eve", env={"STSMFA_MFA_CODE": totp(seed, offset=1)})
    cp = home.aws("s3api", "list-buckets", profile="eve-mfa")
    assert cp.returncode == 0, cp.stderr


# ------------------------------------------------------------ idempotence, dry runs


def test_setup_dry_run_changes_nothing_and_a_second_run_finds_nothing_to_change(account):
    before = account.calls()
    cp = account.admin_run("setup", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "would create group ForceMFA" in cp.stdout and "would turn on AllowUsersToChangePassword" in cp.stdout
    assert writes(before, account.calls()) == {}
    assert account.iam.list_groups()["Groups"] == []

    setup_ok(account)
    before = account.calls()
    for args in (["setup", "--yes"], ["setup"], ["setup", "--dry-run"]):
        cp = account.admin_run(*args)
        assert cp.returncode == 0 and cp.stdout == "nothing to change\n", (args, cp.stdout, cp.stderr)
    assert writes(before, account.calls()) == {}


def test_setup_shows_a_changed_policy_and_replaces_it_only_with_yes(account):
    setup_ok(account)
    iam = account.iam
    arn = f"arn:aws:iam::{ACCOUNT}:policy/stsmfa-enrolled"
    # someone edited it by hand, four times: five versions, AWS's limit
    for i in range(4):
        doc = policies.allow_actions([f"s3:ListBucket{i}"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)
    before = account.calls()
    cp = account.admin_run("setup")
    assert cp.returncode == 1
    assert "policy stsmfa-enrolled (v5) differs" in cp.stdout, cp.stdout
    assert re.search(r'^- .*"s3:ListBucket3"', cp.stdout, re.M), cp.stdout
    assert re.search(r"^\+ .*DenyAllExceptListedIfNoMFA", cp.stdout, re.M), cp.stdout
    assert "--yes" in cp.stderr and cp.stderr.startswith("stsmfa: error:"), cp.stderr
    assert writes(before, account.calls()) == {}

    cp = account.admin_run("setup", "--yes")
    assert cp.returncode == 0, cp.stderr
    assert "deleted version v1 of policy stsmfa-enrolled" in cp.stdout, cp.stdout
    assert "updated policy stsmfa-enrolled (new default version v6)" in cp.stdout, cp.stdout
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == 5 and "v1" not in {v["VersionId"] for v in versions}
    default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    cp = account.home.run("admin", "policy", "--variant", "enrolled", "--account", ACCOUNT)
    assert doc == json.loads(cp.stdout)
    assert account.admin_run("setup").stdout == "nothing to change\n"


@pytest.mark.parametrize("answer", ["n", "y"])
def test_setup_asks_on_the_terminal_before_letting_users_change_their_password(account, answer):
    home = account.home
    term = PtyProcess([str(home.bin), "admin", "setup", "--profile", "admin", "--no-mfa"],
                      env=home._env({"TERM": "dumb"}), cwd=home.root)
    try:
        term.expect(r"Turn on AllowUsersToChangePassword .*\? \[Y/n\] ", timeout=60)
        term.sendline(answer)
        rc = term.wait(60)
    finally:
        term.close()
    if answer == "y":
        assert rc == 0, term.text
        policy = account.iam.get_account_password_policy()["PasswordPolicy"]
        assert policy["AllowUsersToChangePassword"] is True
        assert "turned on AllowUsersToChangePassword" in term.text
    else:
        assert rc == 1, term.text
        assert "AllowUsersToChangePassword stays off" in term.text
        assert "hint: run it again with --yes" in term.text
        with pytest.raises(Exception) as info:
            account.iam.get_account_password_policy()
        assert "NoSuchEntity" in str(info.value)
    # the groups were made either way
    assert {g["GroupName"] for g in account.iam.list_groups()["Groups"]} == {"NotYetLoginUsers", "MFARequired", "ForceMFA"}


def test_setup_keeps_the_other_password_policy_settings(account):
    account.iam.update_account_password_policy(
        MinimumPasswordLength=24, RequireSymbols=True, RequireNumbers=True, MaxPasswordAge=90,
        PasswordReusePrevention=5, AllowUsersToChangePassword=False,
    )
    setup_ok(account)
    p = account.iam.get_account_password_policy()["PasswordPolicy"]
    assert p["AllowUsersToChangePassword"] is True
    assert (p["MinimumPasswordLength"], p["RequireSymbols"], p["RequireNumbers"], p["MaxPasswordAge"],
            p["PasswordReusePrevention"]) == (24, True, True, 90, 5)
    # and onboard's password satisfies it (the bed checks the policy)
    h = onboard(account, "long")
    assert len(h["password"]) >= 24


def test_onboard_and_sync_dry_runs_change_nothing_and_sync_is_idempotent(account):
    setup_ok(account)
    account.bed.create_user("amy", None, mfa=True)
    account.bed.create_user("dan", None, mfa=False)
    before = account.calls()
    cp = account.admin_run("onboard", "bob", "--access-key", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "would create user bob" in cp.stdout and "Temporary password" not in cp.stdout
    cp = account.admin_run("sync", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "would add amy to MFARequired (MFA active)" in cp.stdout, cp.stdout
    assert "would add dan to ForceMFA (no MFA device)" in cp.stdout
    assert writes(before, account.calls()) == {}
    assert account.groups_of("amy") == set() and "bob" not in {
        u["UserName"] for u in account.iam.list_users()["Users"]}

    cp = account.admin_run("sync", "--json")
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["counts"]["changed"] == 2 and out["counts"]["failed"] == 0 and out["dry_run"] is False
    assert {c["user"]: c["add"] for c in out["changes"]} == {"amy": ["MFARequired"], "dan": ["ForceMFA"]}

    before = account.calls()
    cp = account.admin_run("sync")
    assert cp.returncode == 0 and cp.stdout.startswith("nothing to change"), cp.stdout
    cp = account.admin_run("sync", "--quiet")
    assert cp.returncode == 0 and cp.stdout == "" and cp.stderr == ""
    assert writes(before, account.calls()) == {}


def test_sync_exempts_by_flag_and_by_tag(account):
    setup_ok(account)
    account.bed.create_user("svc-flag", None, mfa=False)
    account.bed.create_user("svc-tag", None, mfa=False)
    account.iam.tag_user(UserName="svc-tag", Tags=EXEMPT)
    cp = account.admin_run("sync", "--exempt", "svc-flag")
    assert cp.returncode == 0, cp.stderr
    assert "svc-" not in cp.stdout, cp.stdout
    cp = account.admin_run("sync")
    assert "added svc-flag to ForceMFA" in cp.stdout and "svc-tag" not in cp.stdout, cp.stdout
    # a service user with no password and no key is not left out unless tagged or named
    [plain] = account.bed.create_users("svc-plain", 1)
    cp = account.admin_run("sync", "--exempt", plain)
    assert cp.returncode == 0 and plain not in cp.stdout, cp.stdout
    cp = account.admin_run("sync")
    assert f"added {plain} to ForceMFA (no MFA device)" in cp.stdout, cp.stdout


def test_a_partial_sync_failure_never_leaves_a_user_in_neither_group(account):
    setup_ok(account)
    onboard(account, "bob")
    account.bed.create_user("amy", None, mfa=True)
    iam = account.iam
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]
    seed, now = device["Base32StringSeed"].decode(), step_at()
    iam.enable_mfa_device(UserName="bob", SerialNumber=device["SerialNumber"],
                          AuthenticationCode1=code_for_step(seed, now - 1), AuthenticationCode2=code_for_step(seed, now))
    # the sync user may add to groups but not remove from them
    syncer = account.bed.create_user("syncer", {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:RemoveUserFromGroup", "Resource": "*"},
        ],
    }, mfa=False)
    iam.tag_user(UserName="syncer", Tags=EXEMPT)
    account.home.add_source_profile("syncer", syncer, mfa_serial=False, mfa_process=False)
    cp = account.home.run("admin", "sync", "--profile", "syncer", "--no-mfa")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert cp.stderr.startswith("stsmfa: error: sync: 1 of 2 change(s) failed: bob: RemoveUserFromGroup: access denied"), cp.stderr
    assert "1 change(s) were made" in cp.stderr and "iam:RemoveUserFromGroup" in cp.stderr
    assert "added amy to MFARequired (MFA active)" in cp.stdout, cp.stdout
    # bob was added to the enrolled group first, and kept the onboarding group
    assert account.groups_of("bob") == {"NotYetLoginUsers", "MFARequired"}
    # the next sync with the full admin finishes the move
    cp = account.admin_run("sync")
    assert cp.returncode == 0 and "removed bob from NotYetLoginUsers (MFA active)" in cp.stdout, cp.stdout
    assert account.groups_of("bob") == {"MFARequired"}


def test_a_sync_of_300_users_makes_calls_for_the_groups_and_the_changes_only(account):
    setup_ok(account)
    account.bed.create_users("load", 300, tags=EXEMPT)
    for name in ("m1", "m2"):
        account.bed.create_user(name, None, mfa=True)
    account.bed.create_user("nomfa", None, mfa=False)
    before = account.calls()
    cp = account.admin_run("sync", "--json")
    assert cp.returncode == 0, cp.stderr
    counts = json.loads(cp.stdout)["counts"]
    assert counts["users"] == 305 and counts["changed"] == 3, cp.stdout
    calls = delta(before, account.calls())
    report = {"GenerateCredentialReport", "GetCredentialReport"}
    assert set(calls) == report | {"GetGroup", "ListVirtualMFADevices", "GetAccountAuthorizationDetails",
                                   "ListMFADevices", "AddUserToGroup"}, calls
    assert sum(calls[a] for a in report) <= 4, calls  # generating the report may take a poll or two
    # per group (one page each), one device list, the users' tags in one page of
    # 1,000 (301 of the 304 who would move are exempt by tag: 300 + root), and per
    # moved user their devices checked and one add; the admin running it costs nothing
    assert (calls["GetGroup"], calls["ListVirtualMFADevices"]) == (3, 1), calls
    assert calls["GetAccountAuthorizationDetails"] == 1, calls
    assert (calls["ListMFADevices"], calls["AddUserToGroup"]) == (3, 3), calls

    # now: 305 users, nothing to change: the same handful of calls whatever the users
    account.bed.create_users("more", 300)
    account.admin_run("sync")  # confines the 300 new ones
    before = account.calls()
    cp = account.admin_run("sync")
    assert cp.returncode == 0 and cp.stdout.startswith("nothing to change (605 users"), cp.stdout
    calls = delta(before, account.calls())
    # 1 page each for the empty onboarding and 2-user enrolled groups, 4 of up to 100 for ForceMFA's 301
    assert calls.get("GetGroup") == 1 + 1 + 4, calls
    # nothing grows with the users: the tagged ones' tags are still one page
    assert set(calls) == report | {"GetGroup", "ListVirtualMFADevices", "GetAccountAuthorizationDetails"}, calls
    assert (calls["GetAccountAuthorizationDetails"], calls["ListVirtualMFADevices"]) == (1, 1), calls


def test_a_sync_user_without_the_account_details_reads_tags_one_by_one(account):
    """The cron user of the README may lack iam:GetAccountAuthorizationDetails:
    the exempt tags are then read per user, with a warning naming the action."""
    setup_ok(account)
    cron = account.bed.create_user("mfa-sync", policies.allow_actions([
        "iam:GenerateCredentialReport", "iam:GetCredentialReport", "iam:GetGroup",
        "iam:ListVirtualMFADevices", "iam:AddUserToGroup", "iam:RemoveUserFromGroup",
        "iam:ListUserTags", "iam:ListMFADevices",
    ]), mfa=False)
    for name in ("svc-a", "svc-b"):
        account.bed.create_user(name, None, mfa=False)
        account.iam.tag_user(UserName=name, Tags=EXEMPT)
    account.bed.create_user("dan", None, mfa=False)
    account.home.add_source_profile("mfa-sync", cron, mfa_serial=False, mfa_process=False)
    before = account.calls()
    cp = account.home.run("admin", "sync", "--profile", "mfa-sync", "--no-mfa")
    assert cp.returncode == 0, cp.stderr
    assert "iam:GetAccountAuthorizationDetails is denied" in cp.stderr and "iam:ListUserTags" in cp.stderr, cp.stderr
    assert "added dan to ForceMFA (no MFA device)" in cp.stdout and "svc-" not in cp.stdout, cp.stdout
    calls = delta(before, account.calls())
    # root, admin, svc-a, svc-b (tagged) and dan would move: one ListUserTags each
    assert calls["ListUserTags"] == 5 and calls["GetAccountAuthorizationDetails"] == 1, calls
    assert account.groups_of("dan") == {"ForceMFA"} and account.groups_of("svc-a") == set()


# --------------------------------------------------------------------------- onboard


def test_onboard_writes_the_secrets_to_a_0600_out_file_and_nowhere_else(account):
    setup_ok(account)
    out = account.home.root / "handover" / "carol.txt"
    out.parent.mkdir()
    cp = account.admin_run("onboard", "carol", "--access-key", "--out", str(out))
    assert cp.returncode == 0, cp.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    h = handover(out.read_text())
    assert h["user"] == "carol" and h["password"] and h["secret"]
    assert h["password"] not in cp.stdout and h["secret"] not in cp.stdout
    assert str(out) in cp.stdout
    for secret in (h["password"], h["secret"]):
        assert files_containing(account.home.root, secret, skip=(str(out),)) == []
        assert secret not in account.home.all_output()
    # the key works: carol can read her own user
    carol_iam = boto3.client("iam", endpoint_url=account.bed.endpoint, region_name="us-east-1",
                             aws_access_key_id=h["key_id"], aws_secret_access_key=h["secret"])
    assert carol_iam.get_user()["User"]["UserName"] == "carol"

    # an --out file that exists stops it before anything changes
    before = account.calls()
    cp = account.admin_run("onboard", "dave", "--out", str(out))
    assert cp.returncode == 1 and "--out" in cp.stderr and "hint:" in cp.stderr, cp.stderr
    assert writes(before, account.calls()) == {}


def test_onboard_on_the_terminal_leaves_no_secret_in_files_or_stderr(account):
    setup_ok(account)
    h = onboard(account, "dave", "--access-key")
    assert h["secret"]
    for secret in (h["password"], h["secret"]):
        assert files_containing(account.home.root, secret) == []
        assert secret not in account.home.all_stderr()
    assert account.groups_of("dave") == {"NotYetLoginUsers"}


def test_onboard_a_user_that_exists_is_an_error_that_changes_nothing(account):
    setup_ok(account)
    onboard(account, "bob")
    before = account.calls()
    cp = account.admin_run("onboard", "bob", "--access-key")
    assert cp.returncode == 1 and cp.stdout == ""
    assert cp.stderr.startswith("stsmfa: error: the IAM user bob already exists; nothing was changed"), cp.stderr
    assert "hint:" in cp.stderr
    assert writes(before, account.calls()) == {}


def test_a_missing_permission_names_the_iam_action(account):
    setup_ok(account)
    limited = account.bed.create_user("limited", {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"},
        ],
    }, mfa=False)
    account.iam.tag_user(UserName="limited", Tags=EXEMPT)
    account.home.add_source_profile("limited", limited, mfa_serial=False, mfa_process=False)
    before = account.calls()
    cp = account.home.run("admin", "onboard", "bob", "--profile", "limited", "--no-mfa")
    assert cp.returncode == 1, cp.stderr
    first = cp.stderr.splitlines()[0]
    assert first.startswith("stsmfa: error: onboarding bob stopped: could not create the user: CreateUser: access denied"), cp.stderr
    assert "hint: the admin profile 'limited' needs iam:CreateUser" in cp.stderr
    assert "nothing was changed" in cp.stderr
    # the refused CreateUser is the only write attempted (the bed counts refused calls too)
    assert writes(before, account.calls()) == {"CreateUser": 1}
    assert "bob" not in {u["UserName"] for u in account.iam.list_users()["Users"]}

    # a group that does not exist: said before anything changes
    cp = account.admin_run("onboard", "bob", "--group", "NoSuchGroup")
    assert cp.returncode == 1 and "the group NoSuchGroup does not exist; nothing was changed" in cp.stderr


def test_onboard_failing_after_create_user_says_what_was_done_and_still_hands_over(account):
    setup_ok(account)
    noadd = account.bed.create_user("noadd", {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:AddUserToGroup", "Resource": "*"},
        ],
    }, mfa=False)
    account.home.add_source_profile("noadd", noadd, mfa_serial=False, mfa_process=False)
    cp = account.home.run("admin", "onboard", "erin", "--access-key", "--profile", "noadd", "--no-mfa")
    assert cp.returncode == 1
    assert cp.stderr.startswith(
        "stsmfa: error: onboarding erin stopped: could not add erin to group NotYetLoginUsers: AddUserToGroup: access denied"
    ), cp.stderr
    assert "needs iam:AddUserToGroup" in cp.stderr
    assert ("already done: created user erin; created a login profile for erin (temporary password, reset required)"
            in cp.stderr), cp.stderr
    assert "aws iam delete-user --user-name erin" in cp.stderr
    # the password IAM has now is handed over (it cannot be read back); no key was made
    h = handover(cp.stdout)
    assert h["user"] == "erin" and h["password"] and "key_id" not in h, cp.stdout
    assert h["password"] not in cp.stderr
    assert account.iam.list_access_keys(UserName="erin")["AccessKeyMetadata"] == []
    assert account.groups_of("erin") == set()


def test_sync_before_setup_says_to_run_setup(account):
    cp = account.admin_run("sync")
    assert cp.returncode == 1
    assert "the group NotYetLoginUsers does not exist" in cp.stderr and "stsmfa admin setup" in cp.stderr


# ---------------------------------------------------------------------------- faults


def throttled() -> tuple[int, bytes]:
    return 400, sts_error_xml("Throttling", "Rate exceeded")


def test_throttled_iam_calls_are_retried_and_the_sync_completes(account):
    """IAM throttles big accounts as a matter of course: each IAM action's
    first request is refused with Throttling and the sync still finishes."""
    setup_ok(account)
    account.bed.create_user("amy", None, mfa=True)
    account.bed.create_user("dan", None, mfa=False)
    straight = account.admin_run("sync", "--dry-run")
    assert straight.returncode == 0, straight.stderr
    seen: set[str] = set()

    def plan(n, action):
        if action.startswith(("Get", "List", "Generate")) and action not in seen:
            seen.add(action)
            return throttled()
        return "forward"

    before = account.calls()
    with FakeEndpoint(plan, forward_to=account.bed.endpoint) as fake:
        cp = account.home.run("admin", "sync", "--profile", "admin", "--no-mfa",
                              env={"AWS_ENDPOINT_URL": fake.endpoint}, timeout=120)
        actions = fake.actions()
    assert cp.returncode == 0, cp.stderr
    assert "added amy to MFARequired (MFA active)" in cp.stdout and "added dan to ForceMFA (no MFA device)" in cp.stdout, cp.stdout
    assert cp.stderr == "", cp.stderr
    assert {"GetCredentialReport", "GetGroup"} <= seen, actions
    for action in seen:  # refused once, then sent again
        assert actions.count(action) >= 2, (action, actions)
    assert writes(before, account.calls()) == {"AddUserToGroup": 2}
    assert account.groups_of("amy") == {"MFARequired"} and account.groups_of("dan") == {"ForceMFA"}


def test_throttling_that_does_not_stop_is_one_error_and_changes_nothing(account):
    """AWS_MAX_ATTEMPTS bounds the retries, as for the AWS CLI."""
    setup_ok(account)
    account.bed.create_user("dan", None, mfa=False)

    def plan(n, action):
        return throttled() if action == "GetGroup" else "forward"

    before = account.calls()
    with FakeEndpoint(plan, forward_to=account.bed.endpoint) as fake:
        cp = account.home.run("admin", "sync", "--profile", "admin", "--no-mfa",
                              env={"AWS_ENDPOINT_URL": fake.endpoint, "AWS_MAX_ATTEMPTS": "2"}, timeout=120)
        actions = fake.actions()
    assert_error(cp, "GetGroup", "throttl", "wait a minute", hint=True)
    assert actions.count("GetGroup") == 2, actions
    assert writes(before, account.calls()) == {}
    assert account.groups_of("dan") == set()

    cp = account.home.run("admin", "sync", "--profile", "admin", "--no-mfa", env={"AWS_MAX_ATTEMPTS": "zero"})
    assert_error(cp, "AWS_MAX_ATTEMPTS=zero", "at least 1", hint=True)


def test_an_unreachable_iam_is_one_error_line_with_a_hint_and_changes_nothing(account):
    setup_ok(account)
    account.bed.create_user("dan", None, mfa=False)
    before = account.calls()
    t0 = time.monotonic()
    cp = account.home.run("admin", "sync", "--profile", "admin", "--no-mfa",
                          env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}", "STSMFA_TIMEOUT": "10"},
                          timeout=120)
    took = time.monotonic() - t0
    assert_error(cp, hint=True)
    assert re.search(r"connect|reach|refused", cp.stderr, re.I), cp.stderr
    assert took < 15, f"took {took:.0f}s: an unreachable endpoint must not wait out every retry"
    assert writes(before, account.calls()) == {}


def test_an_unreachable_iam_endpoint_with_sts_reachable_names_the_iam_variable(account):
    setup_ok(account)
    account.bed.create_user("dan", None, mfa=False)
    before = account.calls()
    cp = account.home.run("admin", "sync", "--profile", "admin", "--no-mfa",
                          env={"AWS_ENDPOINT_URL_IAM": f"http://127.0.0.1:{closed_port()}", "AWS_MAX_ATTEMPTS": "1"},
                          timeout=120)
    assert_error(cp, "GenerateCredentialReport", "cannot reach AWS", hint=True)
    assert "AWS_ENDPOINT_URL_IAM" in cp.stderr and "AWS_ENDPOINT_URL_STS" not in cp.stderr, cp.stderr
    assert "MFA code" not in cp.stderr, cp.stderr
    assert writes(before, account.calls()) == {} and account.groups_of("dan") == set()


# ---------------------------------------------------------------------------- policy


def test_admin_policy_prints_each_variant_and_warns_about_console_only(account):
    home = account.home
    cp = home.run("admin", "policy", "--variant", "console-only")
    assert cp.returncode == 0
    doc = json.loads(cp.stdout)
    assert doc["Statement"][-1]["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "false"}}
    assert "warning" in cp.stderr and "long-term access keys" in cp.stderr
    cp = home.run("admin", "policy", "--variant", "enrolled")
    assert cp.returncode == 0 and cp.stderr == ""
    assert "mfa/${aws:username}" in cp.stdout and "mfa/*" not in cp.stdout
    cp = home.run("admin", "policy")
    assert cp.returncode == 0
    assert cp.stdout.count('"Version": "2012-10-17"') == 4
    for name in ("stsmfa-first-login", "stsmfa-enrolled", "stsmfa-force-mfa"):
        assert name in cp.stderr
    cp = home.run("admin", "policy", "--account", "12345")
    assert cp.returncode == 2 and "12 digits" in cp.stderr
