"""Kubernetes values netlab does not support (yet) read as netlab's gap, not as Kubernetes forbidding them (qa58k #4).

`validate` said "'SCTP' is not allowed; use 'TCP' or 'UDP'" and "'ExternalName' is not allowed; use ...", as if
the API refused them: both are valid Kubernetes, which netlab does not model.
"""

from __future__ import annotations

from test_validate_every_problem import validate

HEAD = "name: qx58\nnodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: a}}]\nservices:\n"


def test_an_external_name_service_is_one_netlab_does_not_support_yet(tmp_path):
    text = HEAD + "  - {name: s, type: ExternalName, selector: {app: a}, ports: [{port: 80}]}\n"
    assert validate(tmp_path, text) == [
        "t.yaml:5: services[0].type: 'ExternalName' is a Kubernetes Service type netlab does not support (yet); use "
        "'ClusterIP', 'NodePort' or 'LoadBalancer' (for a name outside the cluster: an internet host, internet.hosts, "
        "reached by its address)"]


def test_an_sctp_port_is_one_netlab_does_not_support_yet(tmp_path):
    text = HEAD + "  - {name: s, selector: {app: a}, ports: [{port: 80, protocol: SCTP}]}\n"
    assert validate(tmp_path, text) == [
        "t.yaml:5: services[0].ports[0].protocol: 'SCTP' is a Kubernetes port protocol netlab does not support (yet); "
        "use 'TCP' or 'UDP'"]


def test_a_value_kubernetes_refuses_too_is_still_not_allowed(tmp_path):
    text = HEAD + "  - {name: s, selector: {app: a}, ports: [{port: 80, protocol: ICMP}]}\n"
    assert validate(tmp_path, text) == [
        "t.yaml:5: services[0].ports[0].protocol: 'ICMP' is not allowed; use 'TCP' or 'UDP'"]


def test_a_list_where_a_word_goes_is_still_said_in_one_line(tmp_path):
    """A value the table cannot key (a list) is no crash: the loader's property test found it."""
    text = HEAD + "  - {name: s, selector: {app: a}, ports: [{port: 80, protocol: [SCTP]}]}\n"
    assert validate(tmp_path, text) == ["t.yaml:5: services[0].ports[0].protocol: ['SCTP'] is not allowed; use "
                                        "'TCP' or 'UDP'"]
