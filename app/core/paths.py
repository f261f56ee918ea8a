"""Where the project's data lives. Data (topics, schemas, samples) is kept out of code, beside the package."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPICS_DIR = ROOT / "topics"
SCHEMAS_DIR = ROOT / "schemas"
SAMPLES_DIR = ROOT / "samples"
STATE_DIR = ROOT / ".switchyard"
