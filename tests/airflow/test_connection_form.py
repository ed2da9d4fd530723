"""The Streamify connection type in Airflow's own UI, in headless Chromium.

A real ``airflow api-server`` serves the UI; the "Add connection" form for the type
``Streamify`` must show the provider's fields under their labels (endpoint URL, API key,
mode, region, state location, AWS connection). The screenshot is kept as a test artifact
and, with ``STREAMIFY_UPDATE_DOCS=1``, as the README's picture.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.airflow._services import Airflow, running_airflow, wait_for

ROOT = Path(__file__).resolve().parents[2]
PICTURE = "airflow-connection-form.png"


def _ui_up(airflow: Airflow) -> bool:
    try:
        return httpx.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_the_connection_form_shows_streamifys_fields(
        airflow_db: Path, browser: Any, tmp_path: Path) -> None:
    with running_airflow(tmp_path / "airflow", {}, services=["api-server"]) as airflow:
        wait_for("the API server", lambda: _ui_up(airflow), airflow, timeout=240)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(f"{airflow.url}/connections", timeout=120_000)
        page.get_by_role("button", name="Add Connection").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("textbox").first.fill("streamify_default")
        kind = dialog.get_by_role("combobox")
        kind.click()
        kind.press_sequentially("Streamify")
        page.get_by_role("option", name="Streamify", exact=True).click()

        dialog.get_by_text("Endpoint URL", exact=True).wait_for(timeout=30_000)
        fields = dialog.get_by_role("textbox")
        fields.nth(2).fill("http://127.0.0.1:8080")
        key = dialog.locator("input[type=password]")
        assert key.count() == 1  # the API key is a password field
        key.fill("stfy_example")
        assert dialog.get_by_text("API key", exact=True).is_visible()
        standard = dialog.screenshot()

        dialog.get_by_text("Extra Fields", exact=True).click()
        for label in ("Mode", "Region", "State location", "AWS connection"):
            dialog.get_by_text(label, exact=True).wait_for(timeout=30_000)
        mode = dialog.get_by_role("combobox").nth(1)
        mode.click()
        assert [o.inner_text() for o in page.get_by_role("option").all()] == ["direct", "api"]
        page.get_by_role("option", name="api", exact=True).click()
        extra = dialog.screenshot()

        page.set_content(
            '<body style="margin:0;padding:16px;display:flex;gap:16px;align-items:flex-start;'
            f'background:#4a5568">{_img(standard)}{_img(extra)}</body>')
        image = page.screenshot(full_page=True)
    (tmp_path / PICTURE).write_bytes(image)
    if os.environ.get("STREAMIFY_UPDATE_DOCS") == "1":
        (ROOT / "docs" / PICTURE).write_bytes(image)


def _img(png: bytes) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">'
