"""The bed's IAM access-key calls, as `stsmfa rotate` uses them: under AWS's
DenyAllExceptListedIfNoMFA policy they need an MFA session, a new key works
at once, a deleted key stops working, and the delay hook holds (or drops) one
request.

Run: target/e2e-venv/bin/python -m pytest -p no:cacheprovider tests/e2e/mfa_bed/tests/test_bed_access_keys.py
"""

from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bed_clients import client, long_term, with_session
from mfa_bed import Bed, User, policies, totp

_names = itertools.count()


@pytest.fixture
def user(bed) -> User:
    return bed.create_user(
        f"keys{next(_names)}-{os.getpid()}", policies.deny_all_except_listed_if_no_mfa()
    )


def mfa_session(bed: Bed, user: User) -> dict:
    sts = long_term(bed, user, "sts")
    return sts.get_session_token(SerialNumber=user.serial, TokenCode=totp(user.seed))["Credentials"]


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"]


def test_access_key_calls_need_mfa(bed, user):
    iam = long_term(bed, user, "iam")
    for call, kwargs in [
        (iam.list_access_keys, {"UserName": user.name}),
        (iam.create_access_key, {"UserName": user.name}),
        (iam.delete_access_key, {"UserName": user.name, "AccessKeyId": user.access_key_id}),
    ]:
        assert error_code(call, **kwargs) == "AccessDenied", call
    assert bed.access_keys(user.name) == [user.access_key_id]


def test_a_new_key_works_and_a_deleted_key_stops_working(bed, user):
    iam = with_session(bed, mfa_session(bed, user), "iam")
    listed = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user.name)["AccessKeyMetadata"]]
    assert listed == [user.access_key_id]
    new = iam.create_access_key(UserName=user.name)["AccessKey"]
    assert new["AccessKeyId"].startswith("AKIA")
    assert sorted(bed.access_keys(user.name)) == sorted([user.access_key_id, new["AccessKeyId"]])
    sts_new = client(bed, "sts", new["AccessKeyId"], new["SecretAccessKey"])
    assert sts_new.get_caller_identity()["Arn"] == user.arn
    iam.delete_access_key(UserName=user.name, AccessKeyId=user.access_key_id)
    assert bed.access_keys(user.name) == [new["AccessKeyId"]]
    assert error_code(long_term(bed, user, "sts").get_caller_identity) == "InvalidClientTokenId"
    # IAM allows two keys per user.
    iam.create_access_key(UserName=user.name)
    assert error_code(iam.create_access_key, UserName=user.name) == "LimitExceeded"


def test_the_delay_hook_holds_one_request_and_can_drop_it(bed, user):
    creds = mfa_session(bed, user)
    iam = with_session(bed, creds, "iam")
    bed.delay("ListAccessKeys", 1.0)
    start = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(iam.list_access_keys, UserName=user.name)
        deadline = time.monotonic() + 5
        while "ListAccessKeys" not in bed.held() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bed.held() == ["ListAccessKeys"]
        pending.result()
    assert time.monotonic() - start >= 1.0
    assert bed.held() == []
    start = time.monotonic()
    iam.list_access_keys(UserName=user.name)
    assert time.monotonic() - start < 1.0, "one-shot"
    new = iam.create_access_key(UserName=user.name)["AccessKey"]
    bed.delay("DeleteAccessKey", 0.2, drop=True)
    # One attempt: botocore retries a 503, and the hook is one-shot.
    once = boto3.client(
        "iam",
        endpoint_url=bed.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        once.delete_access_key(UserName=user.name, AccessKeyId=new["AccessKeyId"])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert new["AccessKeyId"] in bed.access_keys(user.name), "dropped, not carried out"
