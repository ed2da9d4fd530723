"""Upload ids that carry a declared size (``streamify.server._declared``), without servers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamify._plan import plan_parts
from streamify.server._declared import UploadIdAltered, declare, read_declared

SECRET = b"a-secret-every-replica-shares"
KEY = "users/alice/clip.mp4"


@given(upload_id=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                         min_size=1, max_size=200),
       size=st.integers(min_value=0, max_value=5 * 1024**4))
def test_the_declared_plan_comes_back_from_the_id(upload_id: str, size: int) -> None:
    plan = plan_parts(size, 8 * 1024**2)
    declared = read_declared(SECRET, KEY, declare(SECRET, KEY, upload_id, plan))
    assert declared is not None
    assert (declared.upload_id, declared.plan) == (upload_id, plan)


@pytest.mark.parametrize("upload_id", ["2~xr_8q5930-OAEPAd9HuaRQINKvbO95Q", "abc", "a~1.2.x"])
def test_an_id_as_s3_made_it_declares_nothing(upload_id: str) -> None:
    assert read_declared(SECRET, KEY, upload_id) is None


def test_a_changed_declaration_another_key_or_another_secret_is_refused() -> None:
    given = declare(SECRET, KEY, "2~abc", plan_parts(6 * 1024**2, 5 * 1024**2))
    s3_id, _, tail = given.rpartition("~")
    _, part_size, mac = tail.split(".")
    for altered, key, secret in ((f"{s3_id}~{10**12}.{part_size}.{mac}", KEY, SECRET),
                                 (given, "users/bob/clip.mp4", SECRET),
                                 (given, KEY, b"another-secret")):
        with pytest.raises(UploadIdAltered, match="not made for key"):
            read_declared(secret, key, altered)
