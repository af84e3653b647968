"""boto3 clients for the bed's own tests, with client-side parameter
validation and retries off: the server's own checks are what is under test."""

from __future__ import annotations

import boto3
from botocore.config import Config

from mfa_bed import Bed, User

_CONFIG = Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"})


def client(bed: Bed, service: str, key_id: str, secret: str, token: str | None = None):
    return boto3.client(
        service,
        endpoint_url=bed.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=_CONFIG,
    )


def long_term(bed: Bed, user: User, service: str):
    """A client signing with the user's long-term keys."""
    return client(bed, service, user.access_key_id, user.secret_access_key)


def with_session(bed: Bed, creds: dict, service: str):
    """A client signing with STS credentials (a GetSessionToken or AssumeRole answer)."""
    return client(bed, service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
