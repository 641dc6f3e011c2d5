"""The server's Ed25519 key that signs rollout jobs.

The private key lives in a PEM file readable only by the server's user
(created on first use, atomically, so two processes starting together end up
with the same key); agents pin the public key when they enrol and refuse any
job it did not sign.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from patchwarden.errors import ConfigError
from patchwarden.protocol.jobs import canonical_bytes, key_id


@dataclass(frozen=True)
class JobSigner:
    private_key: Ed25519PrivateKey
    public_key: bytes
    key_id: str

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")

    def envelope(self, job: dict[str, Any]) -> dict[str, Any]:
        signature = self.private_key.sign(canonical_bytes(job))
        return {
            "job": job,
            "signature": base64.b64encode(signature).decode("ascii"),
            "key_id": self.key_id,
        }


def _signer(private_key: Ed25519PrivateKey) -> JobSigner:
    public = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return JobSigner(private_key, public, key_id(public))


def load_or_create(path: Path) -> JobSigner:
    """The key in `path`, generated there (mode 0600) when the file does not exist."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if another process made the key first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the job-signing key {path}: {exc}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"the job-signing key {path} is not an Ed25519 private key")
    return _signer(loaded)
