"""Ed25519 signing of audit checkpoints, with the private key in a file outside the database."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from charter.domain.audit import Checkpoint


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class Ed25519FileSigner:
    """Loads (or creates, once, with mode 0600) the key; ``key_id`` is the public key's fingerprint."""

    def __init__(self, key_file: Path) -> None:
        if not key_file.exists():
            try:
                _write_private(key_file, Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
            except FileExistsError:
                pass  # another process created it first; use theirs
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{key_file} is not an Ed25519 private key")
        self._key = key
        self._public: Ed25519PublicKey = key.public_key()
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()

    def verify(self, message: bytes, signature: str, key_id: str) -> bool:
        if key_id != self.key_id:
            return False
        try:
            self._public.verify(base64.b64decode(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True


class FileWitness:
    """The newest checkpoint as a small JSON file beside the key, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Checkpoint | None:
        try:
            return Checkpoint.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None

    def write(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(checkpoint.to_dict()))
        os.replace(tmp, self.path)
