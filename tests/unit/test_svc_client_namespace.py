"""`svc/NAME` from a pod is the Service NAME of the pod's own namespace, as its DNS search path resolves it
(NAME.<ns>.svc.cluster.local): one that only another namespace has is refused, naming the namespaces that have
it, for `netlab trace` and the API's reach and trace alike; `svc/NS/NAME` reaches it from anywhere."""

from __future__ import annotations

import pytest
from netpol_cases import model

from netlab.api.reach import probe_of
from netlab.api.topology import load
from netlab.errors import UsageError
from netlab.trace.targets import resolve_source, resolve_target

ONLY_X = [{"name": "svc-a", "namespace": "x", "selector": {"pod": "a"}, "ports": [{"port": 80}]}]
TWINS = ONLY_X + [{"name": "svc-a", "namespace": "z", "selector": {"pod": "a"}, "ports": [{"port": 80}]}]


def test_a_service_only_another_namespace_has_is_no_bare_name_there():
    lab = load(model("mxsv", [], ONLY_X)).lab
    said = "namespace y has no Service svc-a; name it svc/x/svc-a"
    with pytest.raises(UsageError, match=f"^{said}$"):
        resolve_target(lab, "svc/svc-a", None, None, resolve_source(lab, "y-a"))
    with pytest.raises(UsageError, match=f"^{said}$"):
        probe_of(lab, "y-a", "svc/svc-a")
    ip = str(lab.cluster_ip(lab.services[0]))
    assert resolve_target(lab, "svc/x/svc-a", None, None, resolve_source(lab, "y-a")).ip == ip
    assert resolve_target(lab, "svc/svc-a", None, None, resolve_source(lab, "x-b")).ip == ip  # its own
    assert probe_of(lab, "x-b", "svc/svc-a").svc.address == ip
    assert resolve_target(lab, "svc/svc-a", None, None, resolve_source(lab, "n1")).ip == ip  # a node: no search path


def test_two_namespaces_that_have_it_are_both_named():
    lab = load(model("mxsv", [], TWINS)).lab
    with pytest.raises(UsageError, match="^namespace y has no Service svc-a; name it svc/x/svc-a or svc/z/svc-a$"):
        resolve_target(lab, "svc/svc-a", None, None, resolve_source(lab, "y-a"))
    with pytest.raises(UsageError, match="^namespace y has no Service svc-a; name it svc/x/svc-a or svc/z/svc-a$"):
        resolve_target(lab, "svc/y/svc-a", None, None, resolve_source(lab, "x-a"))


def test_no_such_service_lists_each_as_the_client_may_name_it():
    """QA qa58r 3: from a pod of namespace z, the list named svc/kube-dns, which that pod may not type."""
    lab = load(model("mxsv", [], TWINS)).lab
    with pytest.raises(UsageError) as err:
        resolve_target(lab, "svc/nope", None, None, resolve_source(lab, "x-a"))
    assert "svc/svc-a, svc/z/svc-a, svc/kube-system/kube-dns" in str(err.value), str(err.value)
    with pytest.raises(UsageError) as err:
        resolve_target(lab, "svc/nope", None, None, resolve_source(lab, "n1"))
    assert "svc/x/svc-a, svc/z/svc-a, svc/kube-dns" in str(err.value), str(err.value)  # a node's: as before


def test_trace_names_the_service_as_the_client_pod_would_type_it():
    """QA late58 2: from pod y-a, svc/x/svc-a was named "svc/svc-a" in trace's header and result, which fails there
    (namespace y has no svc-a); from its own namespace the bare name; from a node as before (the lab-wide name)."""
    lab = load(model("mxsv", [], ONLY_X)).lab
    assert resolve_target(lab, "svc/x/svc-a", None, None, resolve_source(lab, "y-a")).name == "svc/x/svc-a"
    assert resolve_target(lab, "svc/x/svc-a", None, None, resolve_source(lab, "x-b")).name == "svc/svc-a"
    assert resolve_target(lab, "svc/svc-a", None, None, resolve_source(lab, "x-b")).name == "svc/svc-a"
    assert resolve_target(lab, "svc/x/svc-a", None, None, resolve_source(lab, "n1")).name == "svc/svc-a"
    twins = load(model("mxsv", [], TWINS)).lab
    assert resolve_target(twins, "svc/z/svc-a", None, None, resolve_source(twins, "x-a")).name == "svc/z/svc-a"
    assert resolve_target(twins, "svc/svc-a", None, None, resolve_source(twins, "x-a")).name == "svc/svc-a"
    assert resolve_target(twins, "svc/x/svc-a", None, None, resolve_source(twins, "n1")).name == "svc/x/svc-a"
