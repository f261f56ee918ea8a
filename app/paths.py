"""Where the project's data lives. Data (topics, schemas, samples) is kept out of code, beside the package.

In a checkout (and an editable install) that is the checkout's own ``topics/``, ``schemas/``, ``samples/``. An
installed wheel (the container image) carries copies as package data under ``app/_data/`` (``setup.py`` puts
them there), because nothing beside ``site-packages/app`` belongs to the project.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PACKAGED_DATA = _PACKAGE / "_data"

INSTALLED = _PACKAGED_DATA.is_dir()
ROOT = _PACKAGE.parent
DATA_ROOT = _PACKAGED_DATA if INSTALLED else ROOT
TOPICS_DIR = DATA_ROOT / "topics"
SCHEMAS_DIR = DATA_ROOT / "schemas"
SAMPLES_DIR = DATA_ROOT / "samples"
# Local state (the default table data dir): the checkout's .switchyard/, or the working directory's when
# installed (site-packages is no place for RocksDB; the image sets SWITCHYARD_DATA_DIR anyway).
STATE_DIR = (Path.cwd() if INSTALLED else ROOT) / ".switchyard"
