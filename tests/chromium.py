"""Debian's headless Chromium for every browser test (never a downloaded browser).

Playwright's sync API marks its event loop as running between calls, so two sync
Playwright instances cannot be open in one process at once: the whole session shares the
one ``browser`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
