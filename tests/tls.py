"""Throwaway TLS material for tests: a CA, a broker certificate and a client certificate, made with the
``openssl`` command line in a directory the test owns.

The ``openssl`` CLI rather than the ``cryptography`` package because it is on every machine that has a JDK and
Python here, and the package is not a dependency: one more wheel only for tests is not worth it. Every call
gets its own minimal config file, so the result does not depend on the system's ``openssl.cnf``.

The extensions are the ones strict verifiers insist on (critical basicConstraints and keyUsage on the CA,
subject/authority key ids, extended key usage on the leaves): Python's ``ssl`` and Java's JSSE both check them,
and a certificate that only passes a lenient verifier would make the tests prove less. Keys are EC P-256
(instant to generate) written as unencrypted PKCS#8, the form Kafka's PEM key store reads without a password.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

DAYS = "2"  # long enough for any run, short enough that a leaked file is worthless soon
#: a fresh unencrypted P-256 key for every certificate request
NEW_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc")


@dataclass(frozen=True)
class Pki:
    """Paths of one test PKI. ``other_ca`` did not sign the broker's certificate: a client trusting only it
    must refuse the broker. It signed ``stranger_cert``, a client certificate the broker must refuse."""

    ca: Path
    broker_cert: Path
    broker_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    stranger_cert: Path
    stranger_key: Path


def openssl() -> str:
    """The ``openssl`` binary, or skip: the TLS tests cannot make certificates without it."""
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("the openssl command line is needed to make test certificates (apt-get install openssl)")
    return found


def make_pki(directory: Path) -> Pki:
    """A fresh CA, a broker certificate (SAN ``IP:127.0.0.1`` and ``DNS:localhost``, since clients dial the
    embedded broker's loopback address and verify it) and a client certificate for mutual TLS, plus a second
    CA and a client certificate of its own for the refusals, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca(directory, "ca", "switchyard test CA")
    other_ca, other_key = _ca(directory, "other-ca", "switchyard untrusted test CA")
    broker_cert, broker_key = _leaf(
        directory,
        "broker",
        "localhost",
        ca_cert,
        ca_key,
        eku="serverAuth",
        san="IP:127.0.0.1,DNS:localhost",
    )
    client_cert, client_key = _leaf(directory, "client", "switchyard", ca_cert, ca_key, eku="clientAuth")
    stranger_cert, stranger_key = _leaf(
        directory, "stranger", "switchyard", other_ca, other_key, eku="clientAuth"
    )
    return Pki(
        ca_cert, broker_cert, broker_key, client_cert, client_key, other_ca, stranger_cert, stranger_key
    )


def _ca(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    config = _config(
        directory,
        name,
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n",
    )
    _run(
        "req",
        "-x509",
        "-config",
        str(config),
        "-extensions",
        "ext",
        *NEW_EC_KEY,
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        DAYS,
        "-subj",
        f"/CN={common_name}",
    )
    return cert, key


def _leaf(
    directory: Path,
    name: str,
    common_name: str,
    ca_cert: Path,
    ca_key: Path,
    *,
    eku: str,
    san: str | None = None,
) -> tuple[Path, Path]:
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    config = _config(
        directory,
        name,
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        f"extendedKeyUsage = {eku}\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n" + (f"subjectAltName = {san}\n" if san else ""),
    )
    _run(
        "req",
        "-new",
        "-config",
        str(config),
        *NEW_EC_KEY,
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={common_name}",
    )
    _run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-set_serial",
        f"0x{secrets.token_hex(16)}",
        "-days",
        DAYS,
        "-extfile",
        str(config),
        "-extensions",
        "ext",
        "-out",
        str(cert),
    )
    return cert, key


def _config(directory: Path, name: str, extensions: str) -> Path:
    path = directory / f"{name}.cnf"
    path.write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n[ext]\n" + extensions,
    )
    return path


def _run(*args: str) -> None:
    done = subprocess.run([openssl(), *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")
