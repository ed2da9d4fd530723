import pytest
from streamify import ConfigError, UploadConfig, parse_size
from streamify._units import format_size, parse_duration

MiB = 1024 * 1024


@pytest.mark.parametrize(("text", "size"), [
    ("8MiB", 8 * MiB), ("64MB", 64_000_000), ("1GiB", 1024 * MiB), ("512", 512),
    ("1.5KiB", 1536), (" 5 mib ", 5 * MiB), (7, 7)])
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "8 parsecs", "", "-1MiB", "MiB"])
def test_bad_sizes_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="8MiB"):
        parse_size(text)


@pytest.mark.parametrize(("text", "seconds"),
                         [("7d", 604800), ("12h", 43200), ("90m", 5400), ("30", 30),
                          ("1w", 604800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ConfigError, match="7d"):
        parse_duration("soon")


def test_format_size() -> None:
    assert format_size(512 * MiB) == "512.0 MiB"
    assert format_size(12) == "12 B"


def test_config_defaults_are_within_limits() -> None:
    config = UploadConfig()
    assert config.part_size == 8 * MiB
    assert config.concurrency == 4


def test_config_accepts_size_strings() -> None:
    config = UploadConfig.from_options(part_size="16MiB", bwlimit="10MB", concurrency=2)
    assert config.part_size == 16 * MiB
    assert config.bwlimit == 10_000_000
    direct = UploadConfig(part_size="16MiB", bwlimit="10MB", concurrency=2)  # as upload() does
    assert direct == config
    assert direct.replace(concurrency=3).part_size == 16 * MiB


@pytest.mark.parametrize(("options", "parameter", "message"), [
    ({"part_size": "3MiB"}, "part_size", r'part_size 3145728 bytes .* part_size="8MiB"'),
    ({"part_size": "lots"}, "part_size", "part_size: cannot read size 'lots'"),
    ({"bwlimit": "1KiB"}, "bwlimit", "bwlimit 1024 B/s"),
    ({"concurrency": 99}, "concurrency", "concurrency 99"),
])
def test_errors_from_python_name_the_parameter_not_a_cli_flag(
        options: dict[str, object], parameter: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        UploadConfig(**options)  # type: ignore[arg-type]
    assert err.value.parameter == parameter
    assert "--" not in str(err.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"part_size": "3MiB"}, "5MiB to 5GiB"),
    ({"concurrency": 0}, "concurrency"),
    ({"checksum": "md6"}, "sha256"),
    ({"bwlimit": 10}, "minimum"),
    ({"on_upload_gone": "maybe"}, "restart"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_config_is_refused_clearly(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UploadConfig.from_options(**options)


def test_config_is_frozen_and_keyword_only() -> None:
    config = UploadConfig()
    with pytest.raises(AttributeError):
        config.part_size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        UploadConfig(8 * MiB)  # type: ignore[call-arg]
