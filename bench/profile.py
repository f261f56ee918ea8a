"""Sampling profile of a running worker with py-spy (attached from outside; the worker is not modified).

py-spy's ``raw`` output is one collapsed stack per line with its sample count; the summary here ranks the
functions where samples *end* (self time) and the project's own frames by inclusive time, which is what decides
where a cut would pay.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from app.paths import ROOT


class Profiler:
    def __init__(self, pid: int, out: Path, rate: int = 97) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            self.error: str | None = "py-spy is not installed (pip install -e '.[dev]')"
            return
        self.error = None
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> str | None:
        """Stop sampling and write the profile; returns an error text when there is no profile."""
        if self.proc is None:
            return self.error
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}"
        return None


_OURS = ("app/core/", "app/domains/", "app/sinks/")


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of all samples: self time by package and by function, and the project's own frames
    (``app/core``, ``app/domains``, ``app/sinks``) by inclusive time."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        total += n
        frames = stack.split(";")
        leaf = _short(frames[-1])
        own[leaf] += n
        packages[leaf.split(" (", 1)[-1].split("/", 1)[0].rstrip(")")] += n
        for f in {s for s in map(_short, frames) if s.split(" (", 1)[-1].startswith(_OURS)}:
            inclusive[f] += n
    if not total:
        return {"self": [], "app_inclusive": [], "self_by_package": []}
    return {
        "samples": total,
        "self_by_package": [(p, round(n / total, 4)) for p, n in packages.most_common(top)],
        "self": [(f, round(n / total, 4)) for f, n in own.most_common(top)],
        "app_inclusive": [(f, round(n / total, 4)) for f, n in inclusive.most_common(top)],
    }


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``: lines vary, files do not."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"
