"""Settings refused before any change on a running CNI lab (root, real plugins, QA q28 5 and 6): the refused
command leaves the lab as it was, every file's bytes the same and status "all as planned"."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import netlab, state_path

pytestmark = pytest.mark.root


def _lab(labs) -> tuple[str, str]:
    lab = f"ev{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    path, _ = labs.up(f"""name: {lab}
network: {{cni: reference}}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1}}
""")
    return lab, path


def _files(lab: str) -> dict[str, bytes]:
    folder = Path(state_path(lab, "state.json")).parent
    out = {str(p): p.read_bytes() for p in folder.rglob("*")  # uts/: the nodes' UTS namespaces, nsfs mounts
           if p.is_file() and p.relative_to(folder).parts[0] != "uts"}
    for pod in ("a", "b"):
        for name in os.listdir(f"/etc/netns/{lab}-{pod}"):
            p = Path(f"/etc/netns/{lab}-{pod}/{name}")
            out[str(p)] = p.read_bytes()
    return out


def _as_planned(lab: str) -> None:
    proc = netlab("status", "--lab", lab, check=False)
    assert proc.returncode == 0 and "all as planned" in proc.stdout, proc.stdout + proc.stderr


def test_netlab_cni_log_never_overwrites_the_labs_own_files(labs):
    lab, path = _lab(labs)
    before = _files(lab)
    assert any(p.endswith("/lock") for p in before) and any(p.endswith("/hosts") for p in before)
    for target in before:
        proc = netlab("up", "-t", path, check=False, env={"NETLAB_CNI_LOG": target})
        assert proc.returncode == 2 and proc.stderr.startswith(f"netlab: cannot write {target}: it is inside "), \
            proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        after = _files(lab)
        lock = next(p for p in before if p.endswith("/lock"))
        assert after.pop(lock).startswith(b"pid ")  # the refused up's own pid, as every holder writes it
        assert after == {p: b for p, b in before.items() if p != lock}, target
    _as_planned(lab)


def test_a_bad_netlab_nft_is_refused_before_impair_records_a_loss(labs):
    lab, _ = _lab(labs)
    saved = Path(state_path(lab, "state.json")).read_bytes()
    proc = netlab("impair", "--lab", lab, "a:eth0", "--loss", "5%", check=False, env={"NETLAB_NFT": "bogus"})
    assert proc.returncode == 3 and proc.stderr == ("netlab: NETLAB_NFT='bogus': use library or process (or unset "
                                                    "it: the library when it can be loaded, else the nft program)\n")
    assert Path(state_path(lab, "state.json")).read_bytes() == saved
    for netns in (f"{lab}-a", f"{lab}-n1"):
        tables = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "tables"], check=True,
                                capture_output=True, text=True).stdout
        assert "netlab-impair" not in [t["table"]["name"] for t in json.loads(tables)["nftables"] if "table" in t]
    _as_planned(lab)
    shown = json.loads(netlab("impair", "--lab", lab, "-o", "json").stdout)
    assert "loss" not in json.dumps(shown), shown
