"""Boundaries import-linter cannot see: what the CLI loads at start-up, and what the wheel installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_does_not_import_the_bench_or_faust_to_start() -> None:
    """``switchyard check`` or ``dlq`` should not pay for the bench (or Faust) at import time."""
    code = "import sys, app.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'bench', 'faust'}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_wheel_installs_app_only() -> None:
    """A top-level ``bench`` package in site-packages would shadow anyone else's; the bench runs from a checkout."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert include == ["app*"]
