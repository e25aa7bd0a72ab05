"""Chromium for browser tests: Debian's package, driven by Playwright (no browser download)."""

import os
import shutil
import subprocess

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # Like the nginx target (tests/target.py): install what the tests need when we can.
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): browser tests cannot run here.")
    return path
