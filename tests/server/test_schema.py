"""Property-based: generated requests to every operation of the OpenAPI schema, sent to the
live service in front of moto, never get a 5xx and always get an answer the schema allows.

A principal owning the whole bucket is used so that generated keys get past the prefix
check and reach the deeper rules. The operations that take object metadata get a longer
run of their own, and a direct one with generated names and values (trailing newlines,
control characters, non-ASCII, non-strings), because a bad name that reached S3 once
turned into a slow 502.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from streamify.server import PrincipalSettings, ServiceSettings, create_app, hash_api_key

from tests.conftest import Bucket
from tests.server.conftest import COOKIE_SECRET, Api, running_api

FUZZ_TOKEN = "fuzz-key-00112233445566778899"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


# The document does not depend on the settings, so it is read from an app built offline.
schema = schemathesis.openapi.from_dict(
    create_app(ServiceSettings(bucket="schema", cookie_secret=SecretStr(COOKIE_SECRET))
               ).openapi())


@pytest.fixture
def fuzz_api(moto_bucket: Bucket) -> Iterator[Api]:
    principal = PrincipalSettings(name="fuzz", key_sha256=hash_api_key(FUZZ_TOKEN), prefix="",
                                  max_object_size=64 * 1024**2)
    with running_api(moto_bucket, principals=(principal,), max_open_uploads=100_000,
                     rate_limit=100_000, rate_burst=100_000) as api:
        yield api


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema(case: schemathesis.Case[Any],
                                                   fuzz_api: Api) -> None:
    response = case.call(base_url=fuzz_api.url, headers={"Authorization": f"Bearer {FUZZ_TOKEN}"})
    # uvicorn itself refuses a request line over 64 KiB, in plain text, before the app sees
    # it; generated requests that break the schema's lengths can be that long.
    assume(response.text != "Invalid HTTP request received.")
    case.validate_response(response, checks=CHECKS)


metadata_schema = schema.include(path_regex=r"^/(v1/uploads|s3/multipart|s3/params)$")


@metadata_schema.parametrize()
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_operations_taking_metadata_answer_within_their_schema(case: schemathesis.Case[Any],
                                                               fuzz_api: Api) -> None:
    response = case.call(base_url=fuzz_api.url, headers={"Authorization": f"Bearer {FUZZ_TOKEN}"})
    assume(response.text != "Invalid HTTP request received.")
    case.validate_response(response, checks=CHECKS)


NAMES = st.one_of(st.text(max_size=140),
                  st.from_regex(r"[A-Za-z0-9_-]{1,8}[\n\r]?", fullmatch=True))
VALUES = st.one_of(st.text(max_size=60), st.integers(), st.booleans(), st.none(),
                   st.floats(allow_nan=False, allow_infinity=False))


@given(metadata=st.dictionaries(NAMES, VALUES, max_size=4))
@example(metadata={"x\n": "v"})
@example(metadata={"camera": "a7\r\nX-Injected: 1"})
@example(metadata={"name": "été.mp4", "n": 3})
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_metadata_never_gets_a_server_error(metadata: dict[str, Any],
                                                      fuzz_api: Api) -> None:
    client = httpx.Client(base_url=fuzz_api.url, timeout=30,
                          headers={"Authorization": f"Bearer {FUZZ_TOKEN}"})
    with client:
        answers = [
            client.post("/v1/uploads", json={"key": "m.bin", "size": 1, "metadata": metadata}),
            client.post("/s3/multipart", json={"filename": "m.bin",
                                               "metadata": {**metadata, "size": 1}}),
            client.get("/s3/params", params={"filename": "m.bin", **{
                f"metadata[{name}]": str(value) for name, value in metadata.items()}}),
        ]
        for answer in answers:
            assert answer.status_code < 500, answer.text
        for upload in fuzz_api.bucket.open_uploads():
            fuzz_api.bucket.client.abort_multipart_upload(
                Bucket=fuzz_api.bucket.name, Key=upload["Key"], UploadId=upload["UploadId"])
    def refused(names: list[str]) -> bool:
        return not all(re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name) for name in names)

    # A name S3 cannot carry is refused with a 4xx; Companion drops null values first.
    expected = [refused(list(metadata)),
                refused([n for n, v in metadata.items() if v is not None]),
                refused(list(metadata))]
    for answer, must_refuse in zip(answers, expected, strict=True):
        if must_refuse:
            assert answer.status_code in (400, 422), answer.text
