"""Field encryption (AES-256-GCM) and keyed look-up hashes (HMAC-SHA256).

Both keys are derived with HKDF from HAVEN_SECRET_KEY under different labels, so the hash
key cannot decrypt and the encryption key cannot be learnt from hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"  # first byte of every ciphertext, so keys can be rotated later


class DecryptionError(ValueError):
    """Ciphertext was altered or made under another key."""


def _derive(secret: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"haven:" + label).derive(
        secret.encode()
    )


class Crypto:
    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 32:
            raise ValueError("the secret key must be at least 32 characters")
        self._aead = AESGCM(_derive(secret_key, b"field-encryption"))
        self._hash_key = _derive(secret_key, b"lookup-hash")
        self.session_key = _derive(secret_key, b"session-cookie")

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        if not blob or blob[:1] != _VERSION:
            raise DecryptionError("unknown ciphertext version")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], None).decode()
        except Exception as exc:  # InvalidTag and friends
            raise DecryptionError("cannot decrypt field") from exc

    def encrypt_opt(self, plaintext: str | None) -> bytes | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_opt(self, blob: bytes | None) -> str | None:
        return None if blob is None else self.decrypt(bytes(blob))

    def lookup_hash(self, value: str) -> str:
        """Keyed hash for look-ups (phone numbers in E.164)."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """A value that names this key without revealing it (a keyed hash of a constant no
        phone number can equal): stored with the data so start-up knows which key it is
        under."""
        return self.lookup_hash("\0haven:key-check")

    def session_secret(self) -> bytes:
        """32 bytes for aiohttp-session's EncryptedCookieStorage (Fernet key material)."""
        return base64.urlsafe_b64encode(self.session_key)
