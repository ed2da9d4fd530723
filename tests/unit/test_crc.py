"""CRC64NVME part checksums: the maths against published check values, the full-object
value combined from the parts, and the option that puts CRC64NVME in Content-MD5's place."""

from __future__ import annotations

import base64
import itertools
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamify import ConfigError, UploadConfig
from streamify._checksum import additional_checksum, checksum_algorithm, full_object_checksum

# CRC-64/NVME's check value (the CRC of b"123456789"), as the NVM Express spec and the CRC
# catalogue give it, and the CRC of no bytes.
VECTORS = [
    (b"123456789", 0xAE8B14860A799888),
    (b"", 0),
]
_POLY = 0x9A6C9329AC4BC9B5  # 0xAD93D23594C93659 reflected
_MASK = (1 << 64) - 1


def _reference_crc64nvme(data: bytes) -> int:
    """CRC-64/NVME bit by bit, straight from its definition (reflected, init and xorout
    all ones): slow, independent of the library."""
    crc = _MASK
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
    return crc ^ _MASK


def _b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(8, "big")).decode()


@pytest.mark.parametrize(("data", "crc"), VECTORS)
def test_crc64nvme_of_known_vectors(data: bytes, crc: int) -> None:
    assert additional_checksum("crc64nvme", data) == _b64(crc)


@settings(max_examples=40)
@given(data=st.binary(max_size=300))
def test_crc64nvme_agrees_with_its_definition(data: bytes) -> None:
    assert additional_checksum("crc64nvme", data) == _b64(_reference_crc64nvme(data))


def test_a_crc64nvme_value_is_told_by_its_length() -> None:
    value = additional_checksum("crc64nvme", b"video")
    assert value is not None and len(base64.b64decode(value)) == 8
    assert checksum_algorithm(value) == "crc64nvme"


@settings(max_examples=60)
@given(data=st.binary(min_size=1, max_size=4096), cuts=st.lists(st.integers(1, 4095),
                                                                    max_size=6))
def test_the_full_object_crc_is_the_crc_of_all_the_parts_bytes(data: bytes,
                                                                cuts: list[int]) -> None:
    bounds = [0, *sorted({c for c in cuts if c < len(data)}), len(data)]
    parts = [data[a:b] for a, b in itertools.pairwise(bounds)]
    values = [(additional_checksum("crc64nvme", part) or "", len(part)) for part in parts]
    assert full_object_checksum(values) == additional_checksum("crc64nvme", data)


def test_the_full_object_crc_depends_on_the_order_of_the_parts() -> None:
    first, second = b"a" * 100, b"b" * 50
    crc = [(additional_checksum("crc64nvme", p) or "", len(p)) for p in (first, second)]
    assert full_object_checksum(crc) != full_object_checksum(crc[::-1])
    assert full_object_checksum(crc) == additional_checksum("crc64nvme", first + second)


def test_an_object_has_at_least_one_part() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        full_object_checksum([])


def test_without_content_md5_a_checksum_must_check_the_parts() -> None:
    with pytest.raises(ConfigError, match="crc64nvme") as caught:
        UploadConfig(content_md5=False)
    assert caught.value.parameter == "content_md5"
    config = UploadConfig(checksum="crc64nvme", content_md5=False)
    assert config.checksum == "crc64nvme" and not config.content_md5
    assert UploadConfig().content_md5  # MD5 stays the default


def test_crc64nvme_without_awscrt_is_refused_before_any_upload(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "awscrt", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'streamify\[crc\]'") as caught:
        UploadConfig(checksum="crc64nvme")
    assert caught.value.parameter == "checksum"
