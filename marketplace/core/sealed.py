"""Sealing small secrets at rest (a provider's bank account) with authenticated encryption:
AES-256-GCM from ``cryptography``.

The key is derived with HKDF-SHA256 from ``MARKETPLACE_DATA_KEY`` when set, else from the
application's ``SECRET_KEY``; keys in ``DATA_KEY_FALLBACKS`` (or ``SECRET_KEY_FALLBACKS``)
still open what older keys sealed, so the key can be rotated (a value is resealed under the
current key on its next save). Each seal draws a fresh 96-bit nonce, so equal values seal
differently.

A sealed value is ``v2.<urlsafe base64 of nonce, ciphertext and tag>``. It is never written to
logs or the audit trail, and a value that was altered, or sealed under a key this application no
longer has, raises ``SealBroken`` rather than returning anything.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

PREFIX = "v2"
NONCE_BYTES = 12
# Bound to every sealed value: a ciphertext made for another purpose under the same key fails.
ASSOCIATED_DATA = b"marketplace sealed v2"


class SealBroken(ValueError):
    """The sealed value was altered, or sealed under a key this application no longer has."""


def _cipher(secret: str | bytes) -> AESGCM:
    root = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"marketplace sealed v2 aes-gcm"
    ).derive(root)
    return AESGCM(key)


def _root_secrets() -> list[str | bytes]:
    config = current_app.config
    if config.get("DATA_KEY"):
        return [config["DATA_KEY"], *(config.get("DATA_KEY_FALLBACKS") or ())]
    return [current_app.secret_key, *(config.get("SECRET_KEY_FALLBACKS") or ())]


def seal(plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated under the current key."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher(_root_secrets()[0]).encrypt(nonce, plaintext.encode(), ASSOCIATED_DATA)
    return f"{PREFIX}." + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(value: str) -> str:
    """The plaintext of ``value``; ``SealBroken`` if it was altered or the key is gone."""
    prefix, _, body = (value or "").partition(".")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except (ValueError, binascii.Error) as error:
        raise SealBroken("not a sealed value") from error
    if prefix != PREFIX or len(raw) <= NONCE_BYTES:
        raise SealBroken("not a sealed value")
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    for root in _root_secrets():
        try:
            return _cipher(root).decrypt(nonce, sealed, ASSOCIATED_DATA).decode()
        except InvalidTag:
            continue
    raise SealBroken("the sealed value does not open with any configured key")
