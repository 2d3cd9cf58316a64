"""Debian's Chromium through Playwright, and the webmail's pages for it.

Playwright's own browser download does not work here (no network), so the
tests drive /usr/bin/chromium; they skip when it is not installed.
Screenshots go to `artifacts/screenshots/` at the repository root (or
$NMAIL_ARTIFACTS), kept by CI as test artifacts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("NMAIL_ARTIFACTS") or
                 Path(__file__).resolve().parent.parent / "artifacts" / "screenshots")


@contextmanager
def chromium(extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """A Playwright Browser on Debian's Chromium (pytest.skip when there is none).

    `extra_args`: more Chromium flags, e.g. a `--host-resolver-rules` mapping a
    mail.* name to 127.0.0.1 so the webmail sees the host a user would type.
    """
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, base: str, address: str, password: str) -> None:
    """Log in through the form with a full address (the host is an IP: no domain from it)."""
    page.goto(f"{base}/login")
    page.fill("#userid", address)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    for attempt in range(3):
        try:
            page.screenshot(path=str(path), full_page=False)
            return path
        except Exception as exc:
            # Headless Chromium now and then has no frame to give right after a
            # viewport or colour-scheme change ("Unable to capture screenshot",
            # once in a CI run): wait for the next frames and take it again.
            if "Unable to capture screenshot" not in str(exc) or attempt == 2:
                raise
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                          "requestAnimationFrame(r)))")
    return path
