"""The doctor's "kernel multipath routes": a lab with an internet: section routes each LoadBalancer IP from its
gateway to the nodes (plan/internet.load_balancer_routes) with the gateway's hash sysctls (GATEWAY_SYSCTLS: only in
a kernel with CONFIG_IP_ROUTE_MULTIPATH, the fields and policy 3 only from 5.12) and a multipath route. A kernel
without them is a line naming what is missing and which Services ask, before up changes anything (fake machine:
no root); the probe itself, against a fake /proc/sys of the throwaway namespace."""

from __future__ import annotations

import pytest

from netlab import doctor
from netlab.doctor_needs import needs
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features, mpathprobe, procsys

from test_doctor import DEFAULT, SERVICES, by_name, install_machine, lab_of

INTERNET = "internet: {cidr: 203.0.113.0/24, gateway: {ip: 203.0.113.1}, hosts: [{name: c, ip: 203.0.113.10}]}\n"
ONE_NODE = lab_of(text="name: m1\nnodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: a}}]\n"
                       "services:\n  - {name: lb, type: LoadBalancer, selector: {app: a}, ports: [{port: 80}]}\n"
                       + INTERNET)
NODE_PORT = lab_of(text="name: m2\nnodes: [{name: n1}, {name: n2}]\npods: [{name: a, node: n1, labels: {app: a}}]\n"
                        "services:\n  - {name: np, type: NodePort, selector: {app: a}, ports: [{port: 80}]}\n"
                        + INTERNET)
FIX = ("boot a kernel >= 5.12 with CONFIG_IP_ROUTE_MULTIPATH (modprobe cannot help: multipath routing is part of "
       "the kernel's IPv4 routing, not a module, and fib_multipath_hash_fields came with Linux 5.12)")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def test_a_lab_whose_gateway_routes_load_balancer_ips_needs_it():
    assert "multipath" in needs(SERVICES)  # two nodes: a route of two hops
    assert "multipath" in needs(ONE_NODE)  # one node: a plain route, but the gateway's hash sysctls all the same
    assert "multipath" not in needs(NODE_PORT)  # an internet, but no LoadBalancer IP for its gateway to route
    assert "multipath" not in needs(DEFAULT)
    assert "multipath" in features.FEATURES and "multipath" not in doctor.CNI_FEATURES  # tried in plain doctor too


def test_the_test_hook_fails_up_naming_the_services_that_ask(machine, monkeypatch):
    assert by_name(doctor.report(SERVICES, for_this_lab=True))["multipath"].status == doctor.OK
    monkeypatch.setenv(doctor.MISSING_HOOK, "multipath")
    line = by_name(doctor.report(SERVICES, for_this_lab=True))["multipath"].line()
    assert line == ("FAIL  kernel multipath routes: reported missing by NETLAB_DOCTOR_MISSING (a test hook); asked "
                    f"for by LoadBalancer Service default/web-lb; fix: {FIX}"), line
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(SERVICES)
    [said] = str(info.value).splitlines()
    assert said.startswith("FAIL  kernel multipath routes: reported missing by") and "default/web-lb" in said, said
    assert said.endswith("; without it `up` cannot route their IPs from the internet gateway to the nodes (leave out "
                         "type: LoadBalancer or the internet: section, or run on a kernel that has it)"), said
    doctor.require_for(NODE_PORT)  # not asked for, not checked
    # plain doctor requires it, as what topologies/services.yaml's LoadBalancer needs; a lab without one does not
    plain = by_name(doctor.report(DEFAULT, for_this_lab=False))["multipath"]
    assert plain.status == doctor.FAIL and plain.fix == FIX
    lab = by_name(doctor.report(NODE_PORT, for_this_lab=True))["multipath"]
    assert lab.status == doctor.WARN and lab.fix == FIX
    assert "; needed only for LoadBalancer Services of a lab with an internet: section" in lab.detail


class FakeSys:
    """The throwaway namespace's /proc/sys/net/ipv4, as a kernel with or without these files has it."""

    def __init__(self, present: dict[str, str], refuses: set[str] = frozenset()):
        self.values, self.refuses, self.written = dict(present), refuses, []

    def read(self, key):
        return self.values.get(key)

    def write(self, key, value):
        if key not in self.values:
            raise FileNotFoundError(2, "no such sysctl")
        if key in self.refuses:
            raise OSError(22, "Invalid argument")
        self.written.append((key, value))


@pytest.mark.parametrize("present, refuses, said", [
    ({}, set(), "no net.ipv4.fib_multipath_hash_policy: this kernel has no multipath routing "
                "(CONFIG_IP_ROUTE_MULTIPATH)"),
    ({mpathprobe.POLICY: "0"}, set(), "no net.ipv4.fib_multipath_hash_fields: this kernel is older than 5.12 (no "
                                      "hash of chosen fields, policy 3)"),
    ({mpathprobe.POLICY: "0", mpathprobe.FIELDS: "7"}, {mpathprobe.POLICY},
     "net.ipv4.fib_multipath_hash_policy = 3 refused (EINVAL: Invalid argument)"),
])
def test_a_kernel_without_the_gateways_sysctls_is_told_which(monkeypatch, present, refuses, said):
    fake = FakeSys(present, refuses)
    monkeypatch.setattr(procsys, "read_sysctl_here", fake.read)
    monkeypatch.setattr(procsys, "write_sysctl_here", fake.write)
    assert mpathprobe.probe_multipath(None) == (False, said)  # the route is not tried: no connection used
    assert fake.written == []
