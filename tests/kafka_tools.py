"""Kafka's own command-line tools, run from the broker's jars: the tests' oracle for consumer offsets and lag."""

from __future__ import annotations

import subprocess

from app.broker import ensure_jars

CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def run_tool(main_class: str, *args: str, timeout: float = 120.0) -> str:
    """Run one of Kafka's tools with the broker's classpath; its stdout, or an error with everything it said."""
    libs = ensure_jars()
    done = subprocess.run(
        ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs}/*", main_class, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{main_class} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def group_lag(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """(topic, partition) -> LAG of consumer group ``group``, as ``kafka-consumer-groups.sh --describe`` shows it
    (a partition without a committed offset shows ``-`` and is left out)."""
    out = run_tool(CONSUMER_GROUP_COMMAND, "--bootstrap-server", bootstrap, "--describe", "--group", group)
    lines = [line.split() for line in out.splitlines() if line.strip()]
    header = next(i for i, cols in enumerate(lines) if cols[:3] == ["GROUP", "TOPIC", "PARTITION"])
    names = lines[header]
    lag: dict[tuple[str, int], int] = {}
    for cols in lines[header + 1 :]:
        row = dict(zip(names, cols, strict=False))
        if row.get("GROUP") != group or not row.get("LAG", "-").isdigit():
            continue
        lag[(row["TOPIC"], int(row["PARTITION"]))] = int(row["LAG"])
    return lag
