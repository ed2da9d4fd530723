"""Data libraries that speak fsspec write ``streamify://`` URLs: pandas and Dask.

Each library opens ``streamify://bucket/key`` for writing through fsspec, which hands it
Streamify's streamed writer; the objects read back equal. A multipart ETag (``...-N``)
shows the bytes went through the engine (s3fs would have sent a small file in one PUT).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bucket

pd = pytest.importorskip("pandas", reason="pandas is not installed (dev extra)")
np = pytest.importorskip("numpy", reason="numpy is not installed (dev extra)")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (dev extra)")


def storage_options(bucket: Bucket, tmp_path: Path) -> dict[str, Any]:
    return {"endpoint_url": bucket.endpoint, "key": os.environ["AWS_ACCESS_KEY_ID"],
            "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"region_name": "us-east-1"},
            "state_dir": str(tmp_path / "state"), "part_size": "5MiB"}


def frame(rows: int) -> Any:
    rng = np.random.default_rng(8)
    return pd.DataFrame({"frame": np.arange(rows), "score": rng.random(rows),
                         "label": rng.choice(["cat", "dog", "bird"], rows)})


def test_pandas_parquet_round_trip(bucket: Bucket, tmp_path: Path) -> None:
    df = frame(1_000_000)  # about 15 MiB of Parquet: several parts
    url = f"streamify://{bucket.name}/tables/frames.parquet"
    options = storage_options(bucket, tmp_path)

    df.to_parquet(url, storage_options=options)

    back = pd.read_parquet(url, storage_options=options)
    pd.testing.assert_frame_equal(back, df)
    etag = bucket.client.head_object(Bucket=bucket.name, Key="tables/frames.parquet")["ETag"]
    assert int(etag.strip('"').rsplit("-", 1)[1]) >= 2
    assert bucket.open_uploads() == []


def test_pandas_csv_through_text_mode(bucket: Bucket, tmp_path: Path) -> None:
    df = frame(1000)
    url = f"streamify://{bucket.name}/tables/frames.csv"
    options = storage_options(bucket, tmp_path)

    df.to_csv(url, index=False, storage_options=options)

    assert bucket.read("tables/frames.csv").decode() == df.to_csv(index=False)


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_pandas_writes_from_an_except_handler_land(bucket: Bucket, tmp_path: Path,
                                                   form: str) -> None:
    df = frame(1000)
    url = f"streamify://{bucket.name}/errors/report.{form}"
    options = storage_options(bucket, tmp_path)

    try:
        raise KeyError("frame 12")  # the analysis failed: save what it had for a look
    except KeyError:
        if form == "csv":
            df.to_csv(url, index=False, storage_options=options)
        else:
            df.to_parquet(url, storage_options=options)

    back = (pd.read_csv(url, storage_options=options) if form == "csv"
            else pd.read_parquet(url, storage_options=options))
    pd.testing.assert_frame_equal(back, df)
    assert bucket.open_uploads() == []


def test_dask_writes_a_partitioned_dataset(bucket: Bucket, tmp_path: Path) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="dask is not installed (dev extra)")
    df = frame(200_000)
    url = f"streamify://{bucket.name}/dataset"
    options = storage_options(bucket, tmp_path)

    dd.from_pandas(df, npartitions=4).to_parquet(url, storage_options=options,
                                                 write_index=False)

    names = sorted(item["Key"] for item in bucket.client.list_objects_v2(
        Bucket=bucket.name, Prefix="dataset/")["Contents"])
    assert len([n for n in names if n.endswith(".parquet")]) == 4
    back = pd.read_parquet(url, storage_options=options)
    # Dask stores the labels as Arrow strings: the same values in another string dtype.
    pd.testing.assert_frame_equal(back.sort_values("frame").reset_index(drop=True), df,
                                  check_dtype=False)
    assert bucket.open_uploads() == []
