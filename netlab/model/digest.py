"""SHA-256 and BLAKE2b of short texts without loading OpenSSL.

``import hashlib`` loads OpenSSL's libcrypto for its hashes (~3 ms of CPU on the 2-core VM). What runs before
``netlab probe`` forks its early agent, in series with the probing (probe/early.py), hashes only short texts:
a namespace's or an interface's name (naming.py, kernel/nstag.py), the stamp of the state's checkers and a small
lab's state file (realize/state_sum.py). Python's own implementations of the same hashes need no library;
for a long text (a big lab's state) OpenSSL's is faster, and is loaded then.
"""

from __future__ import annotations

from typing import Any, Callable

SHORT = 1 << 16  # bytes: past this, hashlib's (OpenSSL's) sha256 is the faster by more than its loading


def _own(module: str, name: str) -> Callable[..., Any] | None:
    try:
        return getattr(__import__(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):  # another Python: hashlib's
        return None


_SHA256 = _own("_sha256", "sha256") or _own("_sha2", "sha256")  # Python 3.11; 3.12 on
_BLAKE2B = _own("_blake2", "blake2b")


def sha256(data: bytes) -> Any:
    """``hashlib.sha256(data)``."""
    if _SHA256 is not None and len(data) <= SHORT:
        return _SHA256(data)
    import hashlib

    return hashlib.sha256(data)


def blake2b(data: bytes, digest_size: int) -> Any:
    """``hashlib.blake2b(data, digest_size=digest_size)``."""
    if _BLAKE2B is not None:
        return _BLAKE2B(data, digest_size=digest_size)
    import hashlib

    return hashlib.blake2b(data, digest_size=digest_size)
