"""The images CI runs, built from local parts and cached by a hash of their inputs.

No image registry is reachable in CI, so nothing is pulled: the base is a Debian bookworm rootfs made by
``mmdebstrap`` (python3, its venv module, CA certificates) and ``docker import``-ed; the Switchyard image
(``Dockerfile``), the Kafka image (``deploy/kafka/Dockerfile``) and a Prometheus image (Debian's package,
``tests/containers/prometheus.Dockerfile``) are built on it with ``docker build --network host`` (pip and Maven
reach their registries through the host's network).

Every image is tagged with a hash of its inputs (the base's hash included), so an unchanged input is never
rebuilt and a changed one always is; the rootfs tarball is kept under ``.switchyard/images/`` (git ignores
``.switchyard/``) so a machine whose Docker data was wiped re-imports it instead of running mmdebstrap again.
The host's extra CA certificates (``/usr/local/share/ca-certificates``) go into the base: where a TLS-inspecting
proxy sits between CI and the registries, pip and Maven inside the build must trust what the host trusts.

Standard library only: ``.ci/run`` calls ``python3 tests/containers/images.py`` before any virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".switchyard" / "images"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
KAFKA_VERSION_ENV = "SWITCHYARD_KAFKA_VERSION"
# Bump to force a rebuild of everything (say, to pick up Debian security updates).
CACHE_EPOCH = "1"


class ImageError(RuntimeError):
    """An image could not be built; the message carries the tail of the build's output."""


class MissingTool(ImageError):
    """A build prerequisite is not installed: a reason to skip on a developer machine, not a build failure."""


@dataclass(frozen=True)
class Image:
    """A locally built image: ``name`` is what callers ask for, ``tag`` the content-addressed reference."""

    name: str
    tag: str


def docker_answers() -> str | None:
    """``None`` when a Docker engine answers, else why not (for a skip reason)."""
    if shutil.which("docker") is None:
        return "no `docker` command (apt-get install docker.io, then start dockerd)"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        return f"no Docker engine answers ({said[-1] if said else f'docker info: exit {done.returncode}'})"
    return None


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
            )
        elif path.is_file():
            out.append(path)
    return out


def _digest(parts: Iterable[str | bytes], files: Iterable[Path]) -> str:
    h = hashlib.sha256(CACHE_EPOCH.encode())
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    for f in _files(files):
        h.update(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f).encode())
        h.update(b"\x00")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _exists(tag: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0
    )


def _run(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        done = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ImageError(f"{' '.join(args[:3])} ... failed (exit {done.returncode}); log {log}:\n{tail}")


def _say(text: str) -> None:
    print(f"[images] {text}", file=sys.stderr, flush=True)


def base() -> Image:
    """The imported Debian base, built by mmdebstrap when neither the image nor its tarball exists."""
    digest = _digest([SUITE, *BASE_PACKAGES], [HOST_CA_DIR])
    tag = f"switchyard-base:{digest}"
    if _exists(tag):
        return Image("base", tag)
    tarball = CACHE_DIR / f"base-{digest}.tar"
    if not tarball.is_file():
        if shutil.which("mmdebstrap") is None:
            raise ImageError(
                "mmdebstrap is not installed (apt-get install mmdebstrap): it makes the base rootfs"
            )
        started = time.monotonic()
        partial = tarball.with_suffix(".partial.tar")
        hooks = []
        if HOST_CA_DIR.is_dir() and any(HOST_CA_DIR.iterdir()):
            hooks = [
                f"--customize-hook=copy-in {HOST_CA_DIR} /usr/local/share/",
                '--customize-hook=chroot "$1" update-ca-certificates',
            ]
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                *hooks,
                SUITE,
                str(partial),
            ],
            CACHE_DIR / "mmdebstrap.log",
        )
        partial.rename(tarball)
        for stale in CACHE_DIR.glob("base-*.tar"):
            if stale != tarball:
                stale.unlink()
        _say(f"base rootfs made in {time.monotonic() - started:.0f}s ({tarball.stat().st_size >> 20} MiB)")
    started = time.monotonic()
    _run(["docker", "import", str(tarball), tag], CACHE_DIR / "import.log")
    _say(f"{tag} imported in {time.monotonic() - started:.0f}s")
    return Image("base", tag)


# name -> (repository, Dockerfile, build context, extra inputs beyond the context)
_SPECS: dict[str, tuple[str, Path, Path, tuple[Path, ...]]] = {
    "app": (
        "switchyard",
        ROOT / "Dockerfile",
        ROOT,
        tuple(
            ROOT / p
            for p in (
                ".dockerignore",
                "requirements.lock",
                "pyproject.toml",
                "setup.py",
                "MANIFEST.in",
                "README.md",
                "app",
                "topics",
                "schemas",
                "samples",
            )
        ),
    ),
    "kafka": (
        "switchyard-kafka",
        ROOT / "deploy" / "kafka" / "Dockerfile",
        ROOT / "deploy" / "kafka",
        tuple(
            ROOT / "deploy" / "kafka" / p
            for p in (".dockerignore", "pom.xml", "entrypoint.sh", "kafka_ready.py", "log4j2.properties")
        ),
    ),
    "prometheus": (
        "switchyard-prometheus",
        ROOT / "tests" / "containers" / "prometheus.Dockerfile",
        ROOT / "tests" / "containers",
        (),
    ),
}


def _build_args(name: str) -> list[str]:
    """The Kafka image follows ``SWITCHYARD_KAFKA_VERSION`` like the embedded broker (else its Dockerfile's
    default, which tests/ops/test_compose.py holds equal to app/broker.py's)."""
    version = os.environ.get(KAFKA_VERSION_ENV, "").strip()
    return [f"KAFKA_VERSION={version}"] if name == "kafka" and version else []


def image(name: str, base_image: Image | None = None) -> Image:
    """Image ``name`` (``app``, ``kafka``, ``prometheus``), built on the local base unless already built."""
    repository, dockerfile, context, inputs = _SPECS[name]
    base_image = base_image or base()
    args = [f"BASE_IMAGE={base_image.tag}", *_build_args(name)]
    digest = _digest([base_image.tag, *args[1:]], [dockerfile, *inputs])
    tag = f"{repository}:ci-{digest}"
    if not _exists(tag):
        started = time.monotonic()
        _run(
            [
                "docker",
                "build",
                "--force-rm",
                "--network",
                "host",
                *(flag for arg in args for flag in ("--build-arg", arg)),
                "-f",
                str(dockerfile),
                "-t",
                tag,
                str(context),
            ],
            CACHE_DIR / f"build-{name}.log",
        )
        _say(f"{tag} built in {time.monotonic() - started:.0f}s")
    return Image(name, tag)


def all_images() -> dict[str, Image]:
    b = base()
    return {name: image(name, b) for name in _SPECS}


def main() -> int:
    reason = docker_answers()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        images = all_images()
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _say(f"all images ready in {time.monotonic() - started:.0f}s")
    print(json.dumps({name: img.tag for name, img in images.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
