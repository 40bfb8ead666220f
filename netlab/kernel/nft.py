"""nftables in a namespace: ``nft -f`` (one transaction) and ``nft -j list table``, run inside it.

kube-proxy's nftables mode lives in one table of its own (``ip kube-proxy``);
netlab writes it with one ``nft -f`` transaction per node, so the kernel sees
the whole change or none of it, and reads it back as JSON. Tables of
iptables-nft (``ip nat``, ``ip filter``) are iptables' business
(kernel/iptables.py); nothing here touches them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from netlab.kernel.netns import binary, run_in_netns

NFT_TIMEOUT = 120.0


class NftError(Exception):
    """nft failed; the message is one line."""


def run(netns: str, payload: str, label: str = "") -> None:
    """``nft -f -`` in the namespace: one transaction, all of it or none."""
    try:
        proc = run_in_netns(netns, [binary("nft"), "-f", "-"], input=payload.encode(), check=False,
                            timeout=NFT_TIMEOUT)
    except FileNotFoundError:
        raise NftError(f"{netns}: namespace not found while writing nftables rules") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"{netns}: nft -f did not finish in {NFT_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise NftError(f"{netns}: nft -f{' (' + label + ')' if label else ''} failed: {explain(proc.stderr)}")


def list_table(netns: str, family: str, table: str) -> dict | None:
    """``nft -j list table FAMILY TABLE``: the parsed JSON, or None when there is no such table."""
    try:
        proc = run_in_netns(netns, [binary("nft"), "-j", "list", "table", family, table], check=False)
    except FileNotFoundError:
        raise NftError(f"{netns}: namespace not found while reading nftables") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"{netns}: nft list table did not finish") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace")
        if "No such file or directory" in text:
            return None
        raise NftError(f"{netns}: nft -j list table {family} {table} failed: {explain(proc.stderr)}")
    try:
        return json.loads(proc.stdout or b"{}")
    except ValueError:
        raise NftError(f"{netns}: nft -j printed something that is not JSON") from None


def frees_chains_at_once(release: str | None = None) -> bool:
    """Linux 6.2 and later let a transaction delete a chain right after the map element that named it
    (kube-proxy: before 6.2 the kernel notices a moment later, so it deletes stale chains a sync later)."""
    m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (6, 2)


def explain(stderr: bytes) -> str:
    """nft's error (``-:12:5-20: Error: ...``) and the input line it names."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    if not lines:
        return "no error message"
    return lines[0] + (f" (in: {lines[1].strip()[:160]})" if len(lines) > 1 else "")
