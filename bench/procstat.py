"""CPU time and memory of a process from ``/proc``: measured from outside, so the worker runs unmodified."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields are counted after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status_mb(pid: int | str, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM, the kernel's own high-water mark of resident memory: no sampling can miss a short peak."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int | str = "self") -> float | None:
    """VmRSS now (of this process by default), or None once ``pid`` is gone."""
    return _status_mb(pid, "VmRSS")


class CpuTrace:
    """(wall time, cpu seconds) samples of one process, so CPU between two instants known only afterwards
    (first and last output) can be interpolated."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []

    def sample(self, now: float) -> None:
        cpu = cpu_seconds(self.pid)
        if cpu is not None:
            self.samples.append((now, cpu))

    def at(self, when: float) -> float | None:
        """CPU seconds at wall time ``when``, linearly interpolated between the samples around it."""
        if not self.samples:
            return None
        before = [s for s in self.samples if s[0] <= when]
        after = [s for s in self.samples if s[0] >= when]
        if not before:
            return self.samples[0][1]
        if not after:
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (when - t0) / (t1 - t0)

    def between(self, start: float, end: float) -> float | None:
        a, b = self.at(start), self.at(end)
        return None if a is None or b is None else max(b - a, 0.0)
