"""model/digest.py: hashlib's SHA-256 and BLAKE2b, the same digests, without OpenSSL for short texts."""

from __future__ import annotations

import hashlib

import pytest

from netlab.model import digest


@pytest.mark.parametrize("size", [0, 1, 64, digest.SHORT, digest.SHORT + 1, 300_000])
def test_the_same_digests_as_hashlib(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert digest.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    assert digest.sha256(data).digest() == hashlib.sha256(data).digest()
    for n in (4, 32, 64):
        assert digest.blake2b(data, digest_size=n).digest() == hashlib.blake2b(data, digest_size=n).digest()


def test_names_are_as_before():
    """The lab's names and MACs hashed from its names, as a lab made before holds them (values of hashlib's)."""
    from netlab.kernel import nstag
    from netlab.model import naming

    assert naming.short_hash("lab", "pod") == hashlib.sha256(b"lab\0pod").hexdigest()[:8]
    mac = bytearray(hashlib.sha256(b"lab\0eth0").digest()[:6])
    mac[0] = (mac[0] & 0xFE) | 0x02
    assert naming.mac_from_hash("lab", "eth0") == ":".join(f"{b:02x}" for b in mac)
    assert nstag._hash31("lab") == int.from_bytes(hashlib.blake2b(b"lab", digest_size=4).digest(),
                                                  "big") % 0x7FFFFFFF + 1
