"""Property-based: generated requests to every operation of the OpenAPI schema, sent to the
live service in front of moto, never get a 5xx and always get an answer the schema allows.

A principal owning the whole bucket is used so that generated keys get past the prefix
check and reach the deeper rules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
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
    with running_api(moto_bucket, principals=(principal,)) as api:
        yield api


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema(case: schemathesis.Case,
                                                   fuzz_api: Api) -> None:
    response = case.call(base_url=fuzz_api.url, headers={"Authorization": f"Bearer {FUZZ_TOKEN}"})
    # uvicorn itself refuses a request line over 64 KiB, in plain text, before the app sees
    # it; generated requests that break the schema's lengths can be that long.
    assume(response.text != "Invalid HTTP request received.")
    case.validate_response(response, checks=CHECKS)
