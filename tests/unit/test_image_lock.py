"""requirements.lock (the image's pinned dependencies, ``make lock``) still answers pyproject's dependencies.

The Dockerfile installs the lock with ``--require-hashes --no-deps`` and then the project with ``--no-deps``:
a dependency added to pyproject but not locked would be missing from the image (``pip check`` in the build
catches it too, but only where Docker runs). Here every runtime dependency must be pinned, hashed, and inside
the range pyproject allows.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", re.MULTILINE)


def locked() -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in PIN.findall((ROOT / "requirements.lock").read_text())}


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wrong = {}
    for spec in project["dependencies"]:
        req = Requirement(spec)
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            wrong[req.name] = (str(req.specifier), version)
    assert wrong == {}, "run `make lock` (pyproject range, locked version)"


def test_the_build_backend_is_locked_and_every_pin_has_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    assert "setuptools" in locked()  # the image builds the wheel without build isolation
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if PIN.match(block):
            assert "--hash=sha256:" in block, block.splitlines()[0]
