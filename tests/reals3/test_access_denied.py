"""A permanent refusal from a real S3 server: signed again once, then an access error."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import boto3
import pytest
from streamify import (
    AccessDeniedError,
    Destination,
    PartToSign,
    S3ControlPlane,
    SignedPart,
    StateStore,
    UploadConfig,
    Uploader,
)
from streamify._s3control import s3_client

from tests.conftest import Bucket
from tests.helpers import RecordingSender, make_file
from tests.reals3._support import MiB

pytestmark = pytest.mark.reals3


class WrongSecretSigner(S3ControlPlane):
    """Starts, lists and aborts uploads with the right keys but signs part URLs with a
    wrong secret: every URL it hands out, however fresh, is refused with a 403."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint_url=endpoint)
        wrong = boto3.Session(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key="not-the-secret")
        self._wrong = S3ControlPlane(s3_client(endpoint_url=endpoint, region="us-east-1",
                                               session=wrong))

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        return self._wrong.sign_parts(destination, upload_id, parts, expires_in=expires_in)


def test_a_permanent_403_is_signed_again_once_then_fails_with_exit_code_6(
        tmp_path: Path, real_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 6 * MiB)
    sender = RecordingSender()
    config = UploadConfig(part_size="5MiB", concurrency=1, backoff_base=0.01)
    with Uploader(path, real_bucket.url("v.mp4"), control=WrongSecretSigner(real_bucket.endpoint),
                  config=config, state=StateStore(state_dir), sender=sender) as uploader, \
            pytest.raises(AccessDeniedError, match="freshly signed URL") as err:
        uploader.run()
    assert err.value.exit_code == 6
    part_1 = [signed for signed, _ in sender.puts if signed.number == 1]
    assert len(part_1) == 2  # the first URL and one signed again; not 8 attempts
    assert "403" in str(err.value)


def test_a_wrong_secret_on_a_control_call_says_what_storage_said(
        tmp_path: Path, real_bucket: Bucket, state_dir: str) -> None:
    """radosgw answers a wrong secret with no message: the error names its code instead
    of "None", and comes at once (a refusal is not retried)."""
    path = make_file(tmp_path / "v.mp4", 6 * MiB)
    wrong = boto3.Session(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key="not-the-secret")
    control = S3ControlPlane(endpoint_url=real_bucket.endpoint, session=wrong)
    try:
        with Uploader(path, real_bucket.url("v.mp4"), control=control,
                      config=UploadConfig(part_size="5MiB"), state=StateStore(state_dir)
                      ) as uploader, pytest.raises(AccessDeniedError) as err:
            uploader.run()
    finally:
        control.close()
    assert err.value.exit_code == 6
    assert "None" not in str(err.value)
    assert "SignatureDoesNotMatch" in str(err.value)
