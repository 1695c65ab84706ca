"""PINs: generated, hashed slowly with a salt (scrypt), compared in constant time.

The hash format is ``scrypt$N$r$p$salt$hash`` (salt and hash base64). Verifying costs tens of
milliseconds on purpose; the proxy runs it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def generate_pin(digits: int = 6) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def check_pin_text(pin: str) -> str:
    text = pin.strip()
    if not 4 <= len(text) <= 64:
        raise ValueError("a PIN has 4 to 64 characters")
    return text


def hash_pin(pin: str, *, n: int = N) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(check_pin_text(pin), salt, n, R, P)
    return "$".join(("scrypt", str(n), str(R), str(P), _b64(salt), _b64(digest)))


def new_token(prefix: str = "hg") -> tuple[str, str, str]:
    """A fresh API token ``<prefix>_<id>_<secret>``: (id, token, the secret's slow hash)."""
    token_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    return token_id, f"{prefix}_{token_id}_{secret}", hash_pin(secret)


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches ``stored``; False for any malformed input, never raises."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(pin.strip(), base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
