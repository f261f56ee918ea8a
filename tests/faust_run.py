"""A plain Faust app run as a worker subprocess, for tests about Faust itself rather than Switchyard's domains.

The app script appends one JSON object per line to ``COMPAT_OUT``; the test reads them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.paths import ROOT
from app.procs import stop_process


class FaustRun:
    def __init__(self, script: Path, env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.out = Path(env["COMPAT_OUT"])
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, str(script)],
                env={**os.environ, **env},
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @classmethod
    def launch(cls, app_source: str, tmp_path: Path, env: dict[str, str], name: str = "faust") -> FaustRun:
        """Write ``app_source`` to ``tmp_path`` and run it there, importing this project, writing its lines to
        ``<name>.jsonl`` and its log to ``<name>.log`` beside it (a second worker of a test takes another name)."""
        script = tmp_path / f"{name}_app.py"
        script.write_text(app_source)
        env = {"COMPAT_OUT": str(tmp_path / f"{name}.jsonl"), "PYTHONPATH": str(ROOT), **env}
        return cls(script, env, tmp_path / f"{name}.log", cwd=tmp_path)

    def lines(self) -> list[dict[str, Any]]:
        """What the agent wrote so far; fails fast if the worker died instead of waiting out the timeout."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"faust worker exited with {self.proc.returncode}:\n{self.tail()}")
        return self.written()

    def written(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.endswith("}")]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> int:
        return stop_process(self.proc, timeout=60)
