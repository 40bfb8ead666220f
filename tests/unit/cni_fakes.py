"""What the CNI lifecycle tests fake (no root, no plugin run): a conflist lab's folder, and a plugin's ADD answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def conflist_lab(tmp_path: Path, topo: str) -> None:
    """A lab's folder: t.yaml, net.conflist (one plugin, chain) and bin/ with loopback and chain, which are
    found, never run (a fake exec_plugin answers)."""
    (tmp_path / "bin").mkdir()
    for name in ("loopback", "chain"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net",
                                                       "plugins": [{"type": "chain"}]}))
    (tmp_path / "t.yaml").write_text(topo)


def add_result(pod: str, env: dict[str, str]) -> dict[str, Any]:
    """A plugin's ADD result: lo as loopback gives it, else a veth pair with the address CNI_ARGS' IP= asked for."""
    ip = dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";"))["IP"]
    if env["CNI_IFNAME"] == "lo":
        return {"cniVersion": "1.0.0", "interfaces": [{"name": "lo", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"address": "127.0.0.1/8", "interface": 0}]}
    pair = [{"name": "veth" + pod}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}]
    return {"cniVersion": "1.0.0", "interfaces": pair, "ips": [{"address": f"{ip}/24", "interface": 1}]}
