"""SCTP ports of a NetworkPolicy: the rules each node's filter table gets (plan/policy.py), and the doctor's
check that the kernel takes them, which ``up`` requires of a lab whose policies have SCTP ports (fake machine;
the real kernel: tests/integration/test_netpol_sctp.py)."""

from __future__ import annotations

import pytest

from netpol_cases import model
from test_doctor import DEFAULT, by_name, install_machine

from netlab import doctor, doctor_needs
from netlab.api.topology import load
from netlab.errors import EnvironmentNotReady
from netlab.plan.build import build_plan
from netlab.plan.policy import policy_chain

ALLOW = "-j MARK --set-xmark 0x10000/0x10000"
SCTP_IN = {"name": "sctp-in", "namespace": "x",
           "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
                    "ingress": [{"ports": [{"protocol": "SCTP", "port": 9},
                                           {"protocol": "SCTP", "port": 20, "endPort": 22}]}]}}
SCTP_OUT = {"name": "sctp-out", "namespace": "x",
            "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
                                 "ports": [{"protocol": "SCTP", "port": 7}]}]}}


def lab_with(policies: list[dict]):
    return load(model("npsctp", policies)).lab


def sctp_check(lab, for_this_lab: bool = True) -> doctor.Check:
    needed = doctor.needs(lab) if for_this_lab else set(doctor.EVERYTHING)
    return by_name(doctor.diagnose(lab, needed, only=("sctp",)))["sctp"]


def chain_rules(lab, node: str, chain: str) -> list[str]:
    filt = next(r for r in build_plan(lab).of_kind("nat") if r.table == "filter" and r.netns.endswith(f"-{node}"))
    return [r for r in filt.rules if r.startswith(f"-A {chain} ")]


def test_an_sctp_port_and_range_are_rules_as_tcp_and_udp_ones_are():
    lab = lab_with([SCTP_IN, SCTP_OUT])
    ing = policy_chain("ingress", lab.topo.network_policies[0])
    assert chain_rules(lab, "n1", ing) == [
        f'-A {ing} -p sctp -m sctp --dport 9 -m comment --comment "x/sctp-in ingress rule 1 any peer" {ALLOW}',
        f'-A {ing} -p sctp -m sctp --dport 20:22 -m comment --comment "x/sctp-in ingress rule 1 any peer" {ALLOW}',
    ]
    egr = policy_chain("egress", lab.topo.network_policies[1])
    assert chain_rules(lab, "n1", egr) == [  # to x/b (10.244.1.12, on n2) on SCTP 7
        f'-A {egr} -d 10.244.1.12/32 -p sctp -m sctp --dport 7 -m comment --comment "x/sctp-out egress rule 1 '
        f'peer 1" {ALLOW}']


def test_the_model_and_the_rules_agree_on_sctp():
    lab = lab_with([SCTP_IN])
    from netlab.model.netpol import Peer, policy_set

    ps = policy_set(lab)
    xa, xb = ps.pod("x-a"), ps.pod("x-b")
    assert ps.flow(Peer(xb.ip, xb), Peer(xa.ip, xa), "SCTP", 21).allowed
    assert not ps.flow(Peer(xb.ip, xb), Peer(xa.ip, xa), "SCTP", 23).allowed
    assert not ps.flow(Peer(xb.ip, xb), Peer(xa.ip, xa), "TCP", 9).allowed


def test_a_lab_with_sctp_ports_needs_the_kernels_sctp_rules():
    assert {"sctp", "iptables-restore"} <= doctor.needs(lab_with([SCTP_IN]))
    assert "sctp" not in doctor.needs(lab_with([]))
    assert doctor_needs.sctp_policies(lab_with([SCTP_IN, SCTP_OUT])) == ["x/sctp-in", "x/sctp-out"]


def test_sctp_rules_the_kernel_refuses_fail_up_naming_the_policies(tmp_path, monkeypatch):
    lab = lab_with([SCTP_IN, SCTP_OUT])  # loaded before the fake machine points the state folder at /run/netlab
    machine = install_machine(tmp_path, monkeypatch)
    assert sctp_check(lab).line() == (
        "ok    kernel SCTP rules: iptables-restore takes -p sctp -m sctp --dport (a port, a range)")
    machine.missing |= {"xt_sctp"}
    line = sctp_check(lab).line()
    assert line.startswith("FAIL  kernel SCTP rules: iptables-restore refuses -p sctp -m sctp --dport "
                           "(iptables-restore v1.8.9 (legacy): Couldn't load match `sctp'"), line
    assert "; fix: modprobe xt_sctp (CONFIG_NETFILTER_XT_MATCH_SCTP" in line
    # a lab without SCTP ports does not need it: a warning, and up goes on
    plain = sctp_check(DEFAULT)
    assert plain.status == doctor.WARN and "needed only for NetworkPolicies with SCTP ports" in plain.line()
    assert sctp_check(DEFAULT, for_this_lab=False).status == doctor.WARN  # plain doctor: not required either
    doctor.require_for(DEFAULT, only=("sctp",))
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(lab, only=("sctp", "iptables-restore"))
    assert str(info.value).startswith("FAIL  kernel SCTP rules: iptables-restore refuses")
    assert str(info.value).endswith("; asked for by the SCTP ports of network policies x/sctp-in, x/sctp-out: "
                                    "without it their rules cannot be written (leave out those ports, or run on "
                                    "a kernel that has it)")
    assert "\n" not in str(info.value)


def test_without_iptables_restore_the_sctp_check_says_it_was_not_tried(tmp_path, monkeypatch):
    lab = lab_with([SCTP_IN])
    machine = install_machine(tmp_path, monkeypatch)
    machine.missing |= {"iptables-restore"}
    check = sctp_check(lab)
    assert check.status == doctor.FAIL and "not tried: no iptables-restore" in check.line()
