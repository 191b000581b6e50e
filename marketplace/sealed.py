"""Sealing small secrets at rest (a provider's bank account): authenticated encryption with the
standard library only.

The installed dependencies hold no cipher, so this is encrypt-then-MAC built from HMAC-SHA256:
the keystream is HMAC(enc_key, nonce || block counter) (HMAC as a pseudo-random function in
counter mode), and the tag is HMAC(mac_key, version || nonce || ciphertext), checked in constant
time before anything is decrypted. Each seal draws a fresh 16-byte nonce, so equal values seal
differently. The two keys are derived from ``MARKETPLACE_DATA_KEY`` when set, else from the
application's ``SECRET_KEY``; keys in ``SECRET_KEY_FALLBACKS`` still open what older keys sealed,
so the key can be rotated (reseal on the next save).

A sealed value is ``v1.<urlsafe base64>``: it is never written to logs or the audit trail, and a
value that fails its tag raises ``SealBroken`` rather than returning garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from flask import current_app

VERSION = b"v1"
NONCE_BYTES = 16
TAG_BYTES = 32


class SealBroken(ValueError):
    """The sealed value was altered, or sealed under a key this application no longer has."""


def _keys(secret: str | bytes) -> tuple[bytes, bytes]:
    root = secret.encode() if isinstance(secret, str) else secret
    enc = hmac.new(root, b"marketplace sealed v1 encryption", hashlib.sha256).digest()
    mac = hmac.new(root, b"marketplace sealed v1 authentication", hashlib.sha256).digest()
    return enc, mac


def _root_secrets() -> list[str | bytes]:
    config = current_app.config
    if config.get("DATA_KEY"):
        return [config["DATA_KEY"], *(config.get("DATA_KEY_FALLBACKS") or ())]
    return [current_app.secret_key, *(config.get("SECRET_KEY_FALLBACKS") or ())]


def _keystream(enc_key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(
            hmac.new(enc_key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        )
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def seal(plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated under the current key."""
    enc_key, mac_key = _keys(_root_secrets()[0])
    nonce = secrets.token_bytes(NONCE_BYTES)
    data = plaintext.encode()
    ciphertext = _xor(data, _keystream(enc_key, nonce, len(data)))
    tag = hmac.new(mac_key, VERSION + nonce + ciphertext, hashlib.sha256).digest()
    return "v1." + base64.urlsafe_b64encode(nonce + ciphertext + tag).decode()


def unseal(sealed: str) -> str:
    """The plaintext of ``sealed``; ``SealBroken`` if it was altered or the key is gone."""
    prefix, _, body = (sealed or "").partition(".")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except ValueError as error:
        raise SealBroken("not a sealed value") from error
    if prefix != "v1" or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise SealBroken("not a sealed value")
    nonce, ciphertext, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    for root in _root_secrets():
        enc_key, mac_key = _keys(root)
        expected = hmac.new(mac_key, VERSION + nonce + ciphertext, hashlib.sha256).digest()
        if hmac.compare_digest(expected, tag):
            return _xor(ciphertext, _keystream(enc_key, nonce, len(ciphertext))).decode()
    raise SealBroken("the sealed value does not open with any configured key")
