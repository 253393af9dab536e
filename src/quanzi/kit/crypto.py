"""Encryption of personal data at rest: one data key per workspace, wrapped by the secret key.

Each workspace has a random 256-bit data key, stored wrapped (AES-256-GCM) under a key
derived from QUANZI_SECRET_KEY with HKDF. Values are sealed with AES-256-GCM (random 96-bit
nonce, the field name as associated data, so a ciphertext cannot be moved to another field),
and looked up by a blind index: HMAC-SHA256 of the normalised value under a second key derived
from the data key. Losing the secret key loses the personal data: back it up with the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from quanzi.kit.errors import QuanziError

SEALED_PREFIX = "enc:v1:"
_WRAP_INFO = b"quanzi workspace data key wrap v1"
_INDEX_INFO = b"quanzi blind index v1"


class DecryptionFailed(QuanziError, ValueError):
    """A sealed value or wrapped key did not open: wrong secret key or tampered data."""

    status_code = 500


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(secret_key: str, data_key: bytes, workspace_id: int) -> str:
    """The data key sealed under the secret key, bound to its workspace."""
    kek = _hkdf(secret_key.encode(), _WRAP_INFO)
    nonce = os.urandom(12)
    aad = f"workspace:{workspace_id}".encode()
    return _b64e(nonce + AESGCM(kek).encrypt(nonce, data_key, aad))


def unwrap_data_key(secret_key: str, wrapped: str, workspace_id: int) -> bytes:
    kek = _hkdf(secret_key.encode(), _WRAP_INFO)
    raw = _b64d(wrapped)
    try:
        return AESGCM(kek).decrypt(raw[:12], raw[12:], f"workspace:{workspace_id}".encode())
    except InvalidTag:
        raise DecryptionFailed(
            f"the data key of workspace {workspace_id} does not open with this secret key "
            "(was QUANZI_SECRET_KEY or the data directory's secret_key changed?)"
        ) from None


@dataclass(frozen=True)
class WorkspaceKey:
    """Seals, opens and blind-indexes one workspace's personal data."""

    data_key: bytes

    def seal(self, field: str, value: str) -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self.data_key).encrypt(nonce, value.encode(), field.encode())
        return SEALED_PREFIX + _b64e(nonce + ct)

    def open(self, field: str, sealed: str) -> str:
        if not is_sealed(sealed):
            raise DecryptionFailed(f"{field}: not a sealed value")
        raw = _b64d(sealed[len(SEALED_PREFIX) :])
        try:
            return AESGCM(self.data_key).decrypt(raw[:12], raw[12:], field.encode()).decode()
        except (InvalidTag, ValueError):
            raise DecryptionFailed(f"{field}: sealed value does not open") from None

    def blind_index(self, field: str, value: str) -> str:
        """A stable keyed digest of a normalised value, for exact lookups without plaintext."""
        key = _hkdf(self.data_key, _INDEX_INFO)
        return hmac.new(key, f"{field}\0{value}".encode(), hashlib.sha256).hexdigest()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)
