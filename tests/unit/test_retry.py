import random

import pytest
from streamify._retry import Action, backoff_delay, classify_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "code", "action"),
    [
        (500, "InternalError", Action.RETRY),
        (502, "", Action.RETRY),
        (503, "SlowDown", Action.RETRY),
        (429, "", Action.RETRY),
        (408, "", Action.RETRY),
        (400, "RequestTimeout", Action.RETRY),
        (400, "BadDigest", Action.RETRY),
        (400, "XAmzContentSHA256Mismatch", Action.RETRY),
        (403, "AccessDenied", Action.RESIGN),
        (403, "SignatureDoesNotMatch", Action.RESIGN),
        (403, "", Action.RESIGN),
        (400, "ExpiredToken", Action.RESIGN),
        (404, "NoSuchUpload", Action.UPLOAD_GONE),
        (404, "NoSuchKey", Action.UPLOAD_GONE),
        (404, "NoSuchBucket", Action.FATAL),
        (400, "InvalidDigest", Action.FATAL),
        (400, "EntityTooLarge", Action.FATAL),
        (411, "MissingContentLength", Action.FATAL),
    ],
)
def test_classification(status: int, code: str, action: Action) -> None:
    assert classify_status(status, code) is action


def test_backoff_grows_exponentially_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(20.0, 0.25 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, base=0.25, cap=20.0, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spreads over the whole range


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(2)
    assert all(backoff_delay(1, base=0.25, cap=20, retry_after=7, rng=rng) >= 7
               for _ in range(50))


@pytest.mark.parametrize(("header", "seconds"),
                         [("3", 3.0), ("0.5", 0.5), (None, None), ("", None),
                          ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-4", 0.0)])
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
