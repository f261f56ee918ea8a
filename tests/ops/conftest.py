"""promtool for the ops tests: skipped on a developer machine without it, a failure in CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("promtool is not installed, and CI must check the alert rules: .ci/run installs it")
    pytest.skip("promtool is not installed (apt-get install prometheus); CI installs it and runs these")
