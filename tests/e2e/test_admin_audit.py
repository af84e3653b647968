"""`stsmfa admin audit` and `stsmfa admin check-policy` on their own beds: an
account whose users cover every finding, the sources' policies through the
simulator, 2,000 users at a cost bounded by pages, two accounts merged, a
missing permission named, and no IAM write ever made."""

from __future__ import annotations

import csv
import re
import io
import json
from pathlib import Path

import pytest

from fake_endpoints import FakeEndpoint, sts_error_xml
from harness import REPO, STSMFA_BIN, Home
from mfa_bed import Bed, policies

FIXTURES = REPO / "tests" / "fixtures" / "mfa-policies"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "444455556666"
# Everything audit and check-policy may call: reads only.
READ_ONLY = {
    "GenerateCredentialReport",
    "GetCredentialReport",
    "ListVirtualMFADevices",
    "GetAccountAuthorizationDetails",
    "GetPolicy",
    "GetPolicyVersion",
    "SimulateCustomPolicy",
    "SimulatePrincipalPolicy",
}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# user -> (policy, MFA kind, findings), for the account under audit.
USERS = {
    "nomfa": ("bed-sample", "none", ["console-without-mfa", "keys-without-mfa"]),
    "boolkeys": ("bool-variant", "virtual", ["keys-bypass-mfa"]),
    "stale": ("bed-sample", "virtual", ["stale-key"]),
    "hardware": ("force-mfa-group", "hardware", []),
    "devstar": ("aws-sample", "virtual", ["device-name-not-restricted"]),
    "keymint": ("self-manage-boolifexists", "virtual", ["can-create-keys-without-mfa"]),
    "open": (None, "virtual", ["mfa-not-required"]),
    "grouped": (None, "virtual", []),
    "auditor": ("admin", "virtual", []),
    # Made by the fixture to set up the group: IAM rights with no MFA anywhere.
    "setup-helper": (None, "none", ["keys-without-mfa", "mfa-not-required", "can-create-keys-without-mfa"]),
}


def policy_of(name: str | None) -> dict | None:
    if name is None:
        return None
    if name == "bed-sample":
        return policies.deny_all_except_listed_if_no_mfa()
    if name == "admin":
        return policies.allow_actions(["*"], require_mfa=True)
    return fixture(name)


@pytest.fixture(scope="module")
def bed():
    server = Bed.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def account(bed):
    """The users of USERS, a ForceMFA group with a managed policy, an admin."""
    made = {}
    for name, (policy, mfa, _) in USERS.items():
        if name == "setup-helper":
            continue
        made[name] = bed.create_user(name, policy_of(policy), mfa=(mfa == "virtual"))
    bed.user_state("nomfa", password="Correct-Horse-1", password_last_used_days=2)
    bed.user_state("hardware", hardware_mfa="GAHT12345678", password="Correct-Horse-2")
    bed.user_state("stale", key_age_days=200)
    import boto3

    admin = made["auditor"]
    # The admin's own MFA session is not needed for this setup: a helper user.
    setup = bed.create_user("setup-helper", policies.allow_actions(["iam:*"]), mfa=False)
    iam = boto3.client(
        "iam", endpoint_url=bed.endpoint, region_name="us-east-1",
        aws_access_key_id=setup.access_key_id, aws_secret_access_key=setup.secret_access_key,
    )
    arn = iam.create_policy(PolicyName="ForceMFAPolicy",
                            PolicyDocument=json.dumps(fixture("force-mfa-group")))["Policy"]["Arn"]
    iam.create_group(GroupName="ForceMFA")
    iam.attach_group_policy(GroupName="ForceMFA", PolicyArn=arn)
    iam.add_user_to_group(GroupName="ForceMFA", UserName="grouped")
    return {"users": made, "admin": admin, "policy_arn": arn}


@pytest.fixture
def home(tmp_path, bed, account):
    h = Home(root=tmp_path, bed=bed, bin=STSMFA_BIN)
    h.add_source_profile("admin", account["admin"])
    return h


def calls(bed) -> dict[str, int]:
    return dict(bed.stats()["iam_calls"])


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def run(home, bed, *args, expect=0):
    before = calls(bed)
    cp = home.run("admin", *args, timeout=120)
    assert cp.returncode == expect, (cp.stdout, cp.stderr)
    made = delta(before, calls(bed))
    assert set(made) <= READ_ONLY, f"IAM calls beyond reads: {made}"
    return cp, made


def test_audit_json_reports_exactly_the_expected_findings(home, bed):
    cp, made = run(home, bed, "audit", "--profile", "admin", "--format", "json")
    report = json.loads(cp.stdout)
    rows = {u["user"]: u for u in report["users"]}
    assert set(rows) == set(USERS)
    for name, (_, mfa, found) in USERS.items():
        assert rows[name]["findings"] == found, name
        assert rows[name]["mfa"] == mfa, name
        assert rows[name]["account"] == ACCOUNT
    assert rows["grouped"]["mfa_policies"] == ["ForceMFA/ForceMFAPolicy"]
    assert rows["open"]["mfa_policies"] == []
    assert rows["nomfa"]["console"]["password"] is True
    assert rows["nomfa"]["console"]["last_used"]
    assert [k["age_days"] for k in rows["stale"]["keys"]] == [200]
    counts = {f: sum(f in u["findings"] for u in report["users"]) for f in report["summary"]}
    assert report["summary"] == counts
    assert report["summary"]["stale-key"] == 1 and report["summary"]["keys-without-mfa"] == 2
    assert made.get("GetAccountAuthorizationDetails") == 1


def test_audit_csv_has_one_row_per_user_with_the_same_findings(home, bed):
    cp, _ = run(home, bed, "audit", "--profile", "admin", "--format", "csv")
    rows = {r["user"]: r for r in csv.DictReader(io.StringIO(cp.stdout))}
    assert set(rows) == set(USERS)
    for name, (_, mfa, found) in USERS.items():
        assert rows[name]["findings"] == ";".join(found), name
        assert rows[name]["mfa"] == mfa
    assert rows["stale"]["oldest_key_days"] == "200"
    assert rows["hardware"]["password"] == "true"


def test_throttled_calls_are_retried_and_the_report_is_the_same(home, bed):
    """Each IAM action's first request is refused with Throttling (STS's are
    not touched: a call with an MFA code is never retried)."""
    straight, _ = run(home, bed, "audit", "--profile", "admin", "--format", "json")
    seen: set[str] = set()

    def plan(n, action):
        if action in ("GetSessionToken", "GetCallerIdentity") or action in seen:
            return "forward"
        seen.add(action)
        return 400, sts_error_xml("Throttling", "Rate exceeded")

    with FakeEndpoint(plan, forward_to=bed.endpoint) as fake:
        cp = home.run("admin", "audit", "--profile", "admin", "--format", "json",
                      env={"AWS_ENDPOINT_URL": fake.endpoint}, timeout=120)
        actions = fake.actions()
    assert cp.returncode == 0, cp.stderr
    assert {"GetCredentialReport", "GetAccountAuthorizationDetails", "ListVirtualMFADevices"} <= seen, actions
    for action in seen:
        assert actions.count(action) >= 2, (action, actions)
    want, got = json.loads(straight.stdout), json.loads(cp.stdout)
    assert got["users"] == want["users"] and got["summary"] == want["summary"]


def test_audit_table_lists_findings_and_the_summary(home, bed):
    cp, _ = run(home, bed, "audit", "--profile", "admin", "--stale-days", "365")
    lines = cp.stdout.splitlines()
    assert lines[0].split()[:3] == ["account", "user", "console"]
    stale = next(line for line in lines if line.split()[1:2] == ["stale"])
    # 200 days is not stale under --stale-days 365.
    assert "stale-key" not in stale
    devstar = next(line for line in lines if line.split()[1:2] == ["devstar"])
    assert "device-name-not-restricted" in devstar and "virtual" in devstar
    assert "keys-bypass-mfa: 1" in lines
    assert "stale-key: 0" in lines
    assert f"{len(USERS)} users" in lines


def test_fail_on_exits_3_when_found_0_when_absent_2_when_unknown(home, bed):
    cp, _ = run(home, bed, "audit", "--profile", "admin", "--format", "json",
                "--fail-on", "keys-bypass-mfa,stale-key", expect=3)
    assert json.loads(cp.stdout)["summary"]["keys-bypass-mfa"] == 1
    run(home, bed, "audit", "--profile", "admin", "--stale-days", "1000", "--fail-on", "stale-key")
    bad = home.run("admin", "audit", "--profile", "admin", "--fail-on", "no-such-finding")
    assert bad.returncode == 2
    assert "no-such-finding" in bad.stderr and "console-without-mfa" in bad.stderr


ALLOWED, DENY, NONE = "allowed", "explicitDeny", "implicitDeny"
# fixture -> {(action, target): (long-term key, console without MFA, with MFA)}, findings
CHECKS = {
    "aws-sample": (
        {
            ("s3:GetObject", "*"): (DENY, DENY, NONE),
            ("iam:ChangePassword", "own-user"): (DENY, DENY, NONE),
            ("iam:CreateVirtualMFADevice", "other-device"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:EnableMFADevice", "own-user"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:DeactivateMFADevice", "own-user"): (DENY, DENY, ALLOWED),
            ("iam:DeleteVirtualMFADevice", "own-device"): (DENY, DENY, NONE),
        },
        ["device-name-not-restricted", "password-change-needs-mfa"],
    ),
    "first-login": (
        {
            ("iam:ChangePassword", "own-user"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:CreateAccessKey", "own-user"): (DENY, DENY, ALLOWED),
            ("ec2:RunInstances", "*"): (DENY, DENY, NONE),
        },
        ["device-name-not-restricted"],
    ),
    "bool-variant": (
        {
            ("s3:GetObject", "*"): (NONE, DENY, NONE),
            ("iam:DeleteVirtualMFADevice", "own-device"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:DeleteVirtualMFADevice", "other-device"): (NONE, NONE, NONE),
        },
        ["keys-bypass-mfa"],
    ),
    "self-manage-boolifexists": (
        {
            ("iam:CreateAccessKey", "own-user"): (ALLOWED, ALLOWED, ALLOWED),
            ("s3:ListAllMyBuckets", "*"): (DENY, DENY, NONE),
        },
        ["can-create-keys-without-mfa"],
    ),
    "force-mfa-group": (
        {
            ("iam:ChangePassword", "own-user"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:CreateVirtualMFADevice", "own-device"): (ALLOWED, ALLOWED, ALLOWED),
            ("iam:CreateVirtualMFADevice", "other-device"): (NONE, NONE, NONE),
            ("sts:AssumeRole", "*"): (DENY, DENY, NONE),
        },
        [],
    ),
}


def cells(report: dict) -> dict:
    return {
        (p["action"], p["target"]): (p["long_term_key"], p["console_no_mfa"], p["with_mfa"])
        for p in report["probes"]
    }


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_policy_on_the_sources_policies(home, bed, name):
    expected, found = CHECKS[name]
    cp, made = run(home, bed, "check-policy", str(FIXTURES / f"{name}.json"), "--profile", "admin", "--json")
    report = json.loads(cp.stdout)
    got = cells(report)
    for probe, decisions in expected.items():
        assert got[probe] == decisions, (name, probe)
    assert [f["finding"] for f in report["findings"]] == found
    assert all(f["fix"] for f in report["findings"])
    assert made.get("SimulateCustomPolicy") == 3


def test_check_policy_table_names_the_statement_and_the_fix(home, bed):
    cp, _ = run(home, bed, "check-policy", str(FIXTURES / "bool-variant.json"), "--profile", "admin")
    out = cp.stdout
    header = out.splitlines()[0]
    assert "long-term key" in header and "console, no MFA" in header and "with MFA" in header
    row = next(line for line in out.splitlines() if line.startswith("s3:GetObject "))
    assert row.split()[1:] == ["-", "denied", "-"]
    assert "keys-bypass-mfa" in out
    assert "statement: DoNotAllowAnythingOtherThanAboveUnlessMFAd in bool-variant.json" in out
    assert "BoolIfExists" in out


def test_check_policy_by_arn_and_by_user(home, bed, account):
    cp, made = run(home, bed, "check-policy", "--policy-arn", account["policy_arn"], "--profile", "admin", "--json")
    report = json.loads(cp.stdout)
    assert cells(report)[("sts:AssumeRole", "*")] == (DENY, DENY, NONE)
    assert report["findings"] == []
    cp, made = run(home, bed, "check-policy", "--user", "boolkeys", "--profile", "admin", "--json")
    report = json.loads(cp.stdout)
    assert report["user"] == "boolkeys"
    assert cells(report)[("s3:GetObject", "*")] == (NONE, DENY, NONE)
    assert [f["finding"] for f in report["findings"]] == ["keys-bypass-mfa"]
    assert made.get("SimulatePrincipalPolicy") == 3 and "SimulateCustomPolicy" not in made
    missing = home.run("admin", "check-policy", "--user", "nobody", "--profile", "admin")
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_a_missing_permission_names_the_action(home, bed):
    # The last test on this bed: the user it adds stays.
    limited = bed.create_user("limited-admin", policies.allow_actions(
        ["iam:GenerateCredentialReport", "iam:GetCredentialReport"]), mfa=False)
    home.add_source_profile("limited", limited, mfa_serial=False, mfa_process=False)
    cp = home.run("admin", "audit", "--profile", "limited", "--no-mfa")
    assert cp.returncode == 1
    assert "iam:ListVirtualMFADevices" in cp.stderr, cp.stderr
    cp = home.run("admin", "check-policy", str(FIXTURES / "aws-sample.json"), "--profile", "limited", "--no-mfa")
    assert cp.returncode == 1
    assert "iam:SimulateCustomPolicy" in cp.stderr, cp.stderr


def test_two_thousand_users_cost_pages_not_users(tmp_path):
    with Bed.start() as bed:
        admin = bed.create_user("bulk-admin", policies.allow_actions(["*"]), mfa=False)
        bed.bulk_users("worker", 2000)
        h = Home(root=tmp_path, bed=bed, bin=STSMFA_BIN)
        h.add_source_profile("bulk", admin, mfa_serial=False, mfa_process=False)
        before = calls(bed)
        cp = h.run("admin", "audit", "--profile", "bulk", "--no-mfa", "--format", "json", timeout=300)
        assert cp.returncode == 0, cp.stderr
        made = delta(before, calls(bed))
        users = json.loads(cp.stdout)["users"]
        assert len(users) == 2001
        assert sum(made.values()) < 60, made
        assert made["GetAccountAuthorizationDetails"] >= 3  # 2,000 users are more than one page
        assert set(made) <= READ_ONLY
        workers = [u for u in users if u["user"].startswith("worker")]
        assert all(u["findings"] == ["keys-without-mfa", "mfa-not-required"] for u in workers)


def test_two_accounts_are_merged_with_an_account_column(tmp_path):
    with Bed.start() as bed:
        # Both admins under an MFA policy: each account's session is got once, then cached.
        one = bed.create_user("admin-one", policies.allow_actions(["*"], require_mfa=True))
        two = bed.create_user("admin-two", policies.allow_actions(["*"], require_mfa=True),
                              account=OTHER_ACCOUNT)
        bed.create_user("dev-one", policies.deny_all_except_listed_if_no_mfa())
        bed.create_user("dev-two", policies.bool_console_only(), account=OTHER_ACCOUNT)
        h = Home(root=tmp_path, bed=bed, bin=STSMFA_BIN)
        h.add_source_profile("one", one)
        h.add_source_profile("two", two)
        cp = h.run("admin", "audit", "--profile", "one", "--profile", "two", "--format", "json")
        assert cp.returncode == 0, cp.stderr
        rows = {(u["account"], u["user"]) for u in json.loads(cp.stdout)["users"]}
        assert rows == {
            (ACCOUNT, "admin-one"), (ACCOUNT, "dev-one"),
            (OTHER_ACCOUNT, "admin-two"), (OTHER_ACCOUNT, "dev-two"),
        }
        by_user = {u["user"]: u for u in json.loads(cp.stdout)["users"]}
        # Allow * lets its long-term key mint keys, and Bool does not cover that key.
        assert by_user["dev-two"]["findings"] == ["keys-bypass-mfa", "can-create-keys-without-mfa"]
        table = h.run("admin", "audit", "--profile", "one", "--profile", "two")
        assert table.returncode == 0, table.stderr
        dev_two = next(line for line in table.stdout.splitlines() if " dev-two " in line)
        assert dev_two.startswith(OTHER_ACCOUNT)
        # One MFA session per account for both runs: the second used the cache.
        assert bed.stats()["get_session_token"] == {"admin-one": 1, "admin-two": 1}
        # With --no-mfa the long-term keys meet the MFA policy, and the error says so.
        denied = h.run("admin", "audit", "--profile", "two", "--no-mfa")
        assert denied.returncode == 1
        assert "access denied" in denied.stderr and "hint:" in denied.stderr, denied.stderr


def test_audit_on_a_terminal_shows_a_progress_bar_on_stderr_only(home, tmp_path):
    from pty_driver import PtyProcess

    out = tmp_path / "audit.json"
    # stdout to a file, stderr on the terminal: the bar goes to stderr alone.
    term = PtyProcess(
        ["sh", "-c", f'exec "$0" admin audit --profile admin --format json > {out}', str(home.bin)],
        env=home._env({"TERM": "xterm"}),
        cwd=home.root,
    )
    try:
        assert term.wait(timeout=120) == 0, term.text
    finally:
        term.close()
    report = json.loads(out.read_text())
    # Other tests of this module may add users: the bar counts what the report has.
    total = len(report["users"])
    assert re.search(rf"admin \[=+\] {total}/{total} users", term.text), term.text
    assert set(USERS) <= {u["user"] for u in report["users"]}
    assert "{" not in term.text, "the report went to the terminal"

