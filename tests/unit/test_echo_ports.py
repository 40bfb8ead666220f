"""The echo server's ports (model/echo_ports.py) and how it tells an HTTP request from a plain client (no root)."""

from __future__ import annotations

from netlab.model.topology import Container
from netlab.workload.echo import classify, head_complete, http_response
from netlab.model.echo_ports import echo_ports
from netlab.model.lab import ECHO_CONTAINER

ECHO_NAME = ECHO_CONTAINER.name


def c(name: str, *ports: tuple[int, str], command: list[str] | None = None) -> Container:
    return Container.model_validate({"name": name, "command": command,
                                     "ports": [{"containerPort": p, "protocol": proto} for p, proto in ports]})


def test_default_and_tcp_ports_get_their_udp_twin():
    only = c("main")
    assert echo_ports([only], only) == [(8080, "TCP"), (8080, "UDP")]
    web = c("web", (9000, "TCP"), (9001, "TCP"))
    assert echo_ports([web], web) == [(9000, "TCP"), (9001, "TCP"), (9000, "UDP"), (9001, "UDP")]


def test_a_declared_udp_port_is_udp_only():
    dns = c("dns", (5353, "UDP"))
    assert echo_ports([dns], dns) == [(5353, "UDP")]
    both = c("both", (53, "TCP"), (53, "UDP"))
    assert echo_ports([both], both) == [(53, "TCP"), (53, "UDP")]


def test_a_twin_another_container_of_the_pod_declares_is_left_to_it():
    a, b = c("a", (9000, "TCP")), c("b", (9000, "UDP"))
    assert echo_ports([a, b], a) == [(9000, "TCP")] and echo_ports([a, b], b) == [(9000, "UDP")]
    sidecar = c("dns", (9000, "UDP"), command=["dnsmasq", "-k"])
    assert echo_ports([a, sidecar], a) == [(9000, "TCP")]
    # A port-less echo server holds 8080/UDP: another container's 8080/TCP does not take it.
    default, other = c("main"), c("x", (8080, "TCP"))
    assert echo_ports([default, other], other) == [(8080, "TCP")]


def test_get_pods_lists_what_listens_the_udp_twin_of_a_declared_tcp_port_too(state_root):
    """`get pods -o json` listed 8080/TCP and 8080/UDP for a pod without containers but only 8080/TCP for
    services.yaml's web pods, whose echo server listens on 8080/UDP as well (`ss -lun` there): an echo
    container's ports are what its server listens on; a command container's are its declared ones."""
    from netlab.api import views
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.realize.state import LabState

    topo = {"name": "g", "nodes": [{"name": "n1"}],
            "pods": [{"name": "bare", "node": "n1"},
                     {"name": "web", "node": "n1", "containers": [
                         {"name": "http", "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "web"}]},
                         {"name": "own", "command": ["sleep", "infinity"],
                          "ports": [{"containerPort": 9000, "protocol": "TCP"}]}]}]}
    lab = resolve(Topology.model_validate(topo))
    ports = {(p.name, c.name): [(port.name, port.container_port, port.protocol) for port in c.ports]
             for p in views.pods(LabState("g"), lab) for c in p.containers}
    assert ports == {("bare", ECHO_NAME): [(None, 8080, "TCP"), (None, 8080, "UDP")],
                     ("web", "http"): [("web", 8080, "TCP"), (None, 8080, "UDP")],  # the twin is not declared
                     ("web", "own"): [(None, 9000, "TCP")]}


def test_get_pods_json_gives_a_containers_ports_as_objects_as_a_services(state_root):
    """`get pods -o json`: each container port an object (name, container_port, protocol), as a Service's
    ports are, not "8080/TCP" strings; and read back by from_json as the same."""
    from netlab.api import views
    from netlab.api.jsonio import from_json, to_json
    from netlab.api.results import PodInfo
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.realize.state import LabState

    topo = {"name": "g", "nodes": [{"name": "n1"}], "pods": [{"name": "web", "node": "n1", "containers": [
        {"name": "own", "command": ["sleep", "infinity"], "ports": [{"containerPort": 9000, "name": "api"}]}]}]}
    [pod] = views.pods(LabState("g"), resolve(Topology.model_validate(topo)))
    data = to_json(pod)
    assert data["containers"][0]["ports"] == [{"name": "api", "container_port": 9000, "protocol": "TCP"}]
    assert from_json(PodInfo, data) == pod


def test_classify_waits_for_a_full_first_line():
    assert classify(b"GET / HT") is None
    assert classify(b"GET /x HTTP/1.1\r\n") == "http"
    assert classify(b"HEAD / HTTP/1.0\n") == "http"
    assert classify(b"netlab probe 7\n") == "line"
    assert classify(b"GET /\r\n") == "line"  # HTTP/0.9: no version, not answered as HTTP/1.1
    assert classify(b"hello", final=True) == "line"  # the client half-closed: no more will come
    assert classify(b"x" * 9000) == "line"  # no line end within the size cap


def test_http_response_is_http_1_1_with_the_json_body():
    body = b'{"pod": "p"}\n'
    resp = http_response(body)
    head, _, rest = resp.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK" and rest == body
    assert b"Content-Length: %d" % len(body) in head and b"Content-Type: application/json" in head
    assert http_response(body, head_request=True).endswith(b"\r\n\r\n")
    assert head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") and not head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n")


def test_an_echo_container_that_was_stopped_is_error_143_in_get_pods(state_root, monkeypatch):
    """An echo container that exited is asked of the lab's server as a command container is (it knows it stopped
    serving it: 143, SIGTERM); `get pods` then says Error, not ContainerStatusUnknown."""
    from netlab.api import views
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.realize.state import LabState

    topo = {"name": "g", "nodes": [{"name": "n1"}], "pods": [{"name": "web", "node": "n1"}]}
    lab = resolve(Topology.model_validate(topo))
    cid = f"web/{ECHO_NAME}"
    state = LabState("g")
    state.extra[views.WORKLOAD_RECORD] = {"pods": {"web": {"containers": {ECHO_NAME: {"pid": 4242, "start": 7}}}}}
    asked = []
    monkeypatch.setattr(views, "_container_state", lambda crec, netns, uts, log: ("exited", 4242, False))
    monkeypatch.setattr(views, "exit_codes", lambda lab_name, records: asked.extend(records) or {cid: 143})
    monkeypatch.setattr(views.crashloop, "read", lambda name: {})
    [pod] = views.pods(state, lab)
    assert asked == [cid] and pod.status == "Error" and pod.containers[0].exit_code == 143
