"""Network faults from the wire proxies, one kind at a time, straight to S3 and through the
API service: each is retried within the run, the object read back is byte-identical, and
what was sent again is at most one part per fault."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import streamify
from streamify import HttpControlPlane, S3ControlPlane, StateStore, UploadConfig, Uploader

from tests.faults._stack import TOKEN, Stack, object_sha256, sha256_file
from tests.helpers import make_file
from tests.wireproxy import WireProxy, part_puts

MiB = 1024 * 1024
PART = 5 * MiB
CONFIG = UploadConfig(part_size=PART, concurrency=3, read_timeout=2.0, connect_timeout=2.0,
                      backoff_base=0.05, backoff_max=1.0)


def _upload(stack: Stack, path: Path, key: str, state: Path, mode: str,
            config: UploadConfig = CONFIG) -> tuple[streamify.UploadResult, list[streamify.Event]]:
    control = (HttpControlPlane(stack.api_url, token=TOKEN, timeout=2.0) if mode == "api"
               else S3ControlPlane(endpoint_url=stack.s3.url))
    events: list[streamify.Event] = []
    try:
        with Uploader(path, f"s3://{stack.bucket}/{key}", control=control, config=config,
                      state=StateStore(state)) as uploader:
            uploader.subscribe(events.append)
            return uploader.run(), events
    finally:
        control.close()


def _complete_post(method: str, target: str) -> bool:
    return method == "POST" and "uploadId=" in target


S3_FAULTS: dict[str, Callable[[WireProxy], None]] = {
    "cut mid-part": lambda p: p.cut_parts(after=PART // 2),
    "reset before the answer": lambda p: p.reset_requests(),
    "503 SlowDown, Retry-After 1": lambda p: p.fail_requests(503, "SlowDown", retry_after=1),
    "500 InternalError": lambda p: p.fail_requests(500, "InternalError"),
    "answer stalled past the read timeout": lambda p: p.stall_responses(4.0),
    "part answer truncated": lambda p: p.truncate_responses(match=part_puts),
    "completion answer truncated": lambda p: p.truncate_responses(match=_complete_post),
}


@pytest.mark.parametrize("mode", ["direct", "api"])
@pytest.mark.parametrize("fault", list(S3_FAULTS))
def test_a_network_fault_on_the_way_to_s3_is_retried_in_the_run(
        stack: Stack, workdir: Path, fault: str, mode: str) -> None:
    path = make_file(workdir / "v.bin", 3 * PART + 12345, seed=11)
    key = stack.key(f"net/{mode}.bin")
    S3_FAULTS[fault](stack.s3)
    before = stack.s3.counts()

    result, events = _upload(stack, path, key, workdir / "state", mode)

    assert result.status == "completed"
    assert stack.s3.faults.total() == 1 and stack.s3.pending() == 0
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
    resent = (stack.s3.counts() - before).part_bytes - path.stat().st_size
    assert 0 <= resent <= CONFIG.concurrency * PART
    retries = [e for e in events if isinstance(e, streamify.Retrying)]
    if fault == "completion answer truncated":
        assert resent == 0  # the object was complete; only the answer was lost
    elif fault == "part answer truncated":
        # A part answer has no body: cut after its ETag header, it still says the part
        # arrived (http.client takes the end of the stream for the end of the headers).
        assert len(retries) <= 1, retries
    else:
        assert len(retries) == 1, retries
    if "Retry-After" in fault:
        assert retries[0].delay >= 1.0
    assert stack.open_uploads() == []


API_FAULTS: dict[str, Callable[[WireProxy], None]] = {
    "503 Retry-After on sign": lambda p: p.fail_requests(
        503, "SlowDown", retry_after=1, match=lambda m, t: t.endswith("/sign")),
    "reset on sign": lambda p: p.reset_requests(match=lambda m, t: t.endswith("/sign")),
    "sign answer truncated": lambda p: p.truncate_responses(
        match=lambda m, t: t.endswith("/sign")),
    "sign answer stalled past the timeout": lambda p: p.stall_responses(
        4.0, match=lambda m, t: t.endswith("/sign")),
    "completion answer truncated": lambda p: p.truncate_responses(
        match=lambda m, t: t.endswith("/complete")),
}


@pytest.mark.parametrize("fault", list(API_FAULTS))
def test_a_network_fault_on_the_way_to_the_service_ends_verified(
        stack: Stack, workdir: Path, fault: str) -> None:
    path = make_file(workdir / "v.bin", 2 * PART + 777, seed=12)
    key = stack.key("net/api.bin")
    API_FAULTS[fault](stack.api)
    result, _ = _upload(stack, path, key, workdir / "state", "api")
    assert result.status == "completed"
    assert stack.api.faults.total() == 1
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
    assert stack.s3.counts().part_bytes == path.stat().st_size  # no part sent twice
    assert stack.open_uploads() == []


def test_a_lost_answer_to_starting_an_upload_fails_once_and_the_rerun_finds_it(
        stack: Stack, workdir: Path) -> None:
    path = make_file(workdir / "v.bin", 2 * PART + 5, seed=15)
    key = stack.key("net/create.bin")
    stack.api.truncate_responses(match=lambda m, t: m == "POST" and t == "/v1/uploads")
    state = workdir / "state"
    # Starting an upload is never repeated blindly (that could start a second one): the run
    # fails with one line, and the rerun finds the upload the service did start.
    with pytest.raises(streamify.EndpointError, match="rerun") as failed:
        _upload(stack, path, key, state, "api")
    assert "\n" not in str(failed.value)
    assert stack.api.faults.total() == 1
    result, events = _upload(stack, path, key, state, "api")
    assert result.status == "completed"
    assert any(isinstance(e, streamify.Resumed) and e.found_by == "listing" for e in events)
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
    assert stack.open_uploads() == []


def test_a_throttled_mobile_link_with_a_cut_still_ends_identical(
        stack: Stack, workdir: Path) -> None:
    path = make_file(workdir / "v.bin", 3 * PART, seed=13)
    key = stack.key("net/mobile.bin")
    stack.s3.rate = 4 * MiB  # a shared 4 MiB/s uplink, about 4 s for this file
    stack.s3.cut_parts(after=PART // 3, count=2)
    # Bytes the kernel buffered still drain at the link's rate after the client's last
    # write, so the read timeout must outlast that drain (the default is 120 s).
    slow = CONFIG.replace(read_timeout=10.0)
    result, events = _upload(stack, path, key, workdir / "state", "direct", slow)
    assert result.status == "completed"
    retries = [e for e in events if isinstance(e, streamify.Retrying)]
    assert len(retries) == 2, retries
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


_NETEM_SCRIPT = textwrap.dedent("""
    set -e
    ip link set lo up mtu 1500
    tc qdisc add dev lo root {qdisc}
    {python} -c 'from moto.server import main; main()' -H 127.0.0.1 -p 5999 >/dev/null 2>&1 &
    moto=$!
    trap 'kill $moto' EXIT
    for i in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:5999/ && break; sleep 0.2; done
    {python} - <<'PY'
    import hashlib, boto3, streamify
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:5999", region_name="us-east-1")
    s3.create_bucket(Bucket="netem")
    result = streamify.upload("{path}", "s3://netem/v.bin",
                              endpoint_url="http://127.0.0.1:5999", part_size="5MiB",
                              read_timeout=5.0, state_dir="{state}")
    body = s3.get_object(Bucket="netem", Key="v.bin")["Body"].read()
    print(result.status, hashlib.sha256(body).hexdigest(),
          len(s3.list_multipart_uploads(Bucket="netem").get("Uploads", [])))
    PY
""")


def test_netem_loss_delay_and_rate_in_a_network_namespace(workdir: Path) -> None:
    """Loss, delay and rate from the kernel (``tc netem``) on the loopback of a network
    namespace holding both moto and the client. Where the kernel has no netem, the rate
    alone is shaped with ``tbf`` and the missing loss and delay are printed."""
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("ip"):
        pytest.skip("tc netem: needs root, ip and tc on this machine")
    namespace = f"stfy-faults-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"tc netem: cannot create a network namespace: {made.stderr.strip()}")
    try:
        path = make_file(workdir / "v.bin", 3 * PART + 5, seed=14)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "netem", "AWS_SECRET_ACCESS_KEY": "netem"}
        for qdisc in ("netem delay 15ms 5ms loss 1% rate 200mbit",
                      "tbf rate 200mbit burst 256kb latency 50ms"):
            script = _NETEM_SCRIPT.format(python=sys.executable, path=path, qdisc=qdisc,
                                          state=workdir / "state")
            run = subprocess.run(["ip", "netns", "exec", namespace, "bash", "-c", script],
                                 env=env, capture_output=True, text=True, timeout=300,
                                 check=False)
            if "qdisc kind is unknown" not in run.stderr:
                break
            print(f"\n{qdisc.split()[0]}: not in this kernel ({run.stderr.strip()})")
        else:
            pytest.skip("neither netem nor tbf is in this kernel")
        assert run.returncode == 0, run.stderr
        status, digest, open_uploads = run.stdout.split()
        print(f"\nin a network namespace, lo shaped by `tc qdisc add dev lo root {qdisc}`: "
              f"{status}")
        assert (status, digest, open_uploads) == ("completed", sha256_file(path), "0")
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
