"""README says which labs get kube-proxy's iptables chains and the kubelet's KUBE-FIREWALL, as the plan writes them:
every node of a lab in iptables mode, Services or not (the default lab, `services: []`, has them); none in nftables
mode. It said a lab without Services had neither (no root)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from netlab.plan.build import build_plan
from test_services_plan import lab_of

ROOT = Path(__file__).resolve().parents[2]


def planned(mode: str) -> str:
    data = yaml.safe_load((ROOT / "topologies" / "default-2node.yaml").read_text())
    data["cluster"]["kubeProxyMode"] = mode
    return json.dumps(build_plan(lab_of(data)).to_json())


def test_a_lab_without_services_gets_kube_firewall_in_iptables_mode_only_and_readme_says_so():
    iptables, nft = planned("iptables"), planned("nftables")
    assert "-A KUBE-FIREWALL" in iptables and "-j KUBE-FIREWALL" in iptables and ":KUBE-SERVICES" in iptables
    assert "KUBE-FIREWALL" not in nft and not re.search(r":KUBE-[A-Z-]+ ", nft)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a lab without Services, or in nftables mode, has neither" not in readme
    assert "netlab writes `KUBE-FIREWALL` (with those jumps) in every node of a lab in iptables mode, Services or not" \
        in readme
    assert "a lab in nftables mode has neither, nor any other `KUBE-` iptables chain" in readme
