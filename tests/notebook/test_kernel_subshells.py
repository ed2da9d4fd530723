"""``BrowserUploader``'s kernel side in a real ipykernel, without a browser: a request the
page sends on a kernel subshell, as JupyterLab does, is answered while a cell runs in the
main shell (the page's upload goes on while you work)."""

from __future__ import annotations

import ast
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from tests.conftest import free_port


@pytest.fixture
def kernel() -> Iterator[BlockingKernelClient]:
    manager, client = start_new_kernel(kernel_name="python3",
                                       env={"AWS_DEFAULT_REGION": "us-east-1",
                                            "AWS_ACCESS_KEY_ID": "none",
                                            "AWS_SECRET_ACCESS_KEY": "none"})
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_request_on_a_subshell_is_answered_while_a_cell_runs(
        kernel: BlockingKernelClient) -> None:
    features = kernel.kernel_info(reply=True)["content"].get("supported_features", [])
    if "kernel subshells" not in features:
        pytest.skip("this ipykernel has no kernel subshells (ipykernel 7 has them)")
    kernel.control_channel.send(kernel.session.msg("create_subshell_request", {}))
    subshell = kernel.control_channel.get_msg(timeout=30)["content"]["subshell_id"]
    made = kernel.execute(
        "from streamify_notebook import BrowserUploader\n"
        f"b = BrowserUploader('s3://bucket/x/', endpoint_url='http://127.0.0.1:{free_port()}')",
        user_expressions={"comm": "b.comm.comm_id"}, reply=True, timeout=60)
    assert made["content"]["status"] == "ok", made["content"]
    comm_id = ast.literal_eval(made["content"]["user_expressions"]["comm"]["data"]["text/plain"])

    kernel.execute("import time\ntime.sleep(60)")
    time.sleep(0.5)  # the cell sleeps
    request = kernel.session.msg("comm_msg", {
        "comm_id": comm_id,
        "data": {"method": "custom", "content": {"id": "r1", "op": "nothing", "name": "a"}}})
    request["header"]["subshell_id"] = subshell  # as JupyterLab addresses a widget's messages
    sent = time.monotonic()
    kernel.shell_channel.send(request)
    answer = _answer(kernel, comm_id, "r1", timeout=20)
    assert answer is not None, "the request waited for the running cell"
    assert time.monotonic() - sent < 20
    assert "error" in answer, answer


def _answer(kernel: BlockingKernelClient, comm_id: str, request_id: str,
            timeout: float) -> dict[str, Any] | None:
    """The widget's answer to ``request_id``, or None when none came within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = kernel.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        content = message["content"]
        if message["msg_type"] == "comm_msg" and content.get("comm_id") == comm_id:
            data = content.get("data", {})
            if data.get("method") == "custom" and data["content"].get("id") == request_id:
                answer: dict[str, Any] = data["content"]
                return answer
    return None
