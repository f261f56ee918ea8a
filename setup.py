"""Packs the project's data into the wheel: everything else about the build is declared in pyproject.toml.

``topics/``, ``schemas/`` and ``samples/`` live beside ``app/`` in the checkout (data kept out of code), so a
plain wheel would leave them behind and an installed ``switchyard`` (the container image) could not find its
catalog. This copies them to ``app/_data/`` in the build; ``app/paths.py`` looks there first. Editable
installs skip the copy: the checkout's own directories are found beside the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("topics", "schemas", "samples")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        here = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "app" / "_data"
        for name in DATA_DIRS:
            shutil.copytree(
                here / name,
                target / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )


setup(cmdclass={"build_py": BuildPyWithData})
