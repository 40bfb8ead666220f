"""kube-proxy's health checks (no root): what each node answers on a healthCheckNodePort, as
pkg/proxy/healthcheck/service_health.go writes it, and the echo server that answers for it (sockets on
127.0.0.1 in this process; the node's namespace is the root test's, test_health_check_port.py)."""

from __future__ import annotations

import contextlib
import re
import socket

import pytest

from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan.health import health_checks
from netlab.workload import echoserver
from netlab.workload.echo import EchoLoop
from netlab.workload.echoserver import EchoServer
from test_echo_loop import Running

TOPOLOGY = """name: hc
nodes: [{name: n1}, {name: n2}, {name: n3}]
internet: {hosts: [{name: client, ip: 203.0.113.50}]}
pods:
  - {name: a, node: n1, labels: {app: web}}
  - {name: b, node: n1, labels: {app: web}}
  - {name: c, node: n2, labels: {app: web}}
services:
  - name: web
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {app: web}
    ports: [{name: http, port: 80, targetPort: 8080}, {name: alt, port: 81, targetPort: 8081}]
  - name: np
    type: NodePort
    externalTrafficPolicy: Local
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
  - name: cluster
    type: LoadBalancer
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
"""


def lab():
    return resolve(validate_source(parse_yaml(TOPOLOGY, "hc.yaml")))


def test_each_node_counts_the_services_own_endpoints_over_all_its_ports():
    checks = health_checks(lab())
    # Only the LoadBalancer with externalTrafficPolicy Local has a health check (NeedsHealthCheck).
    assert {(c.namespace, c.name) for c in checks} == {("default", "web")}
    got = {c.node: (c.local, c.status) for c in checks}
    # n1: pods a and b, each on two ports: four "IP:port" endpoints; n3 none: 503.
    assert got == {"n1": (4, 200), "n2": (2, 200), "n3": (0, 503)}
    assert len({c.port for c in checks}) == 1 and 30000 <= checks[0].port <= 32767
    assert [c.netns for c in checks] == ["hc-n1", "hc-n2", "hc-n3"]


def test_the_body_is_kube_proxys_byte_for_byte():
    (n3,) = [c for c in health_checks(lab()) if c.node == "n3"]
    assert n3.body() == ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n'
                         '\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n}')


def get(port: int, request: bytes = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out


@pytest.fixture
def server(monkeypatch):
    """An echo server whose "node namespaces" are this process's own (entering one is the root test's)."""
    monkeypatch.setattr(echoserver.nsmod, "entered", lambda netns: contextlib.nullcontext())
    loop = EchoLoop()
    srv = EchoServer(loop)
    running = Running(loop)
    yield srv, running
    running.close()
    for key in list(loop.listening):
        loop.drop(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_answers_changes_in_place_and_drops(server):
    srv, running = server
    (check,) = [c for c in health_checks(lab()) if c.node == "n1"]
    spec = {**check.spec(), "port": free_port()}
    lines: list[str] = []
    running.call(lambda: lines.extend(srv.sync_health([spec])))
    assert lines == [f"R {check.key}"]
    answer = get(spec["port"])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    # kube-proxy's handler's headers, then Go's net/http's own (a Date, the length), in the order Go writes them
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n")[1:]]
    assert names == [b"Content-Type", b"X-Content-Type-Options", b"X-Load-Balancing-Endpoint-Weight", b"Connection",
                     b"Date", b"Content-Length"], head
    assert b"Content-Type: application/json" in head and b"X-Content-Type-Options: nosniff" in head
    assert b"\r\nX-Load-Balancing-Endpoint-Weight: 4\r\n" in head
    assert re.search(rb"\r\nDate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n", head)
    assert body == check.body().encode()
    assert get(spec["port"], b"hello\n").startswith(b"HTTP/1.1 400 Bad Request")
    # Its endpoints gone: the same socket answers 503 (kube-proxy's SyncEndpoints), and says so when asked.
    gone = {**spec, "status": 503, "body": spec["body"].replace('"localEndpoints": 4', '"localEndpoints": 0')}
    lines.clear()
    running.call(lambda: lines.extend(srv.sync_health([gone])))
    assert lines == [f"R {check.key}"]
    assert get(spec["port"]).startswith(b"HTTP/1.1 503 Service Unavailable")
    served: list[str] = []
    running.call(lambda: served.extend(srv.health_served()))
    assert served == [f"C {check.key} {spec['port']} 503 0"]
    # Not in the set any more: no longer served, and the server has nothing left to keep it.
    running.call(lambda: lines.extend(srv.sync_health([])))
    with pytest.raises(ConnectionRefusedError):
        get(spec["port"])
    assert not srv.health


def test_a_port_taken_is_said_for_that_check(server):
    srv, running = server
    (check,) = [c for c in health_checks(lab()) if c.node == "n1"]
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        spec = {**check.spec(), "port": taken.getsockname()[1]}
        lines: list[str] = []
        running.call(lambda: lines.extend(srv.sync_health([spec])))
    assert len(lines) == 1 and lines[0].startswith(f"E {check.key} ") and "in use" in lines[0], lines


def test_the_gateway_routes_a_load_balancer_ip_only_to_nodes_whose_check_answers_200():
    from netlab.plan.internet import load_balancer_routes
    from netlab.plan.resources import Route

    def targets(lb, service: str) -> set[str]:
        """The node addresses the gateway routes ``service``'s LoadBalancer IP to (a multipath route's hops)."""
        ip = lb.addressing.lb_ip[("default", service)]
        (route,) = [r for r in load_balancer_routes(lb, "hc-gateway") if isinstance(r, Route) and ip in r.dst]
        return {str(gw) for gw in route.nexthops} or {str(route.gateway)}

    full = lab()
    n1, n2, n3 = (str(n.ip) for n in full.nodes)
    assert targets(full, "web") == {n1, n2}  # n3 answers 503: left out
    assert targets(full, "cluster") == {n1, n2, n3}  # externalTrafficPolicy Cluster: no check, every node
    # No endpoint anywhere: every check answers 503, and the gateway fails open, to every node.
    empty = resolve(validate_source(parse_yaml(TOPOLOGY.replace("labels: {app: web}", "labels: {app: x}"), "e.yaml")))
    assert targets(empty, "web") == {n1, n2, n3}


class FakeServer:
    """workload/launch.py's side for workload/health.py: a server that may run, be stopped, or be started."""

    def __init__(self, running: bool, state: str = "S"):
        self.running, self.state = running, state
        self.asked: list[dict] = []
        self.launched = 0

    def install(self, monkeypatch):
        from netlab.workload import health, launch

        monkeypatch.setattr(launch, "server_pid", lambda lab: 4242 if self.running else None)
        monkeypatch.setattr(health.proc, "proc_state", lambda pid: self.state)
        monkeypatch.setattr(launch, "control_path", lambda lab, create=False: "/nonexistent/echo.sock")
        monkeypatch.setattr(launch, "server_log", lambda lab: "/nonexistent/echo.log")
        monkeypatch.setattr(launch, "launch_echo", lambda specs, control, log: self._launch(specs))
        monkeypatch.setattr(launch, "read_launch", lambda launcher, count: None)
        monkeypatch.setattr(launch, "ask", lambda lab, request, count=0: self._ask(request))
        return health

    def _launch(self, specs):
        assert specs == []  # a server for the checks alone: no container
        self.launched += 1
        self.running = True

    def _ask(self, request):
        from netlab.workload.launch import Answer

        self.asked.append(request)
        answer = Answer(complete=True)
        for spec in request.get("specs", []):
            answer.ready[spec["id"]] = (0, 0)
        return answer


def test_up_tells_the_server_the_whole_set_and_starts_one_for_the_checks_alone(monkeypatch):
    fake = FakeServer(running=False)
    health = fake.install(monkeypatch)
    rec: dict = {}
    done = health.start(lab(), rec)
    assert fake.launched == 1 and done.problems == [] and rec == {"health": 6}
    proxy = [f"healthz/{n}" for n in ("n1", "n2", "n3")]  # kube-proxy's own health server, on every node
    assert [s["id"] for s in fake.asked[0]["specs"]] == proxy + [f"health/{n}/default/web" for n in ("n1", "n2", "n3")]
    # The Service loses its check: the server (running) is told the set without it, kube-proxy's own stays.
    cluster = resolve(validate_source(parse_yaml(TOPOLOGY.replace("    externalTrafficPolicy: Local\n", "", 1),
                                                 "c.yaml")))
    done = health.start(cluster, rec)
    assert [s["id"] for s in fake.asked[-1]["specs"]] == proxy and rec == {"health": 3}
    assert fake.launched == 1


def test_a_stopped_server_is_not_asked_and_the_checks_are_said_not_served(monkeypatch):
    fake = FakeServer(running=True, state="T")
    health = fake.install(monkeypatch)
    done = health.start(lab(), {})
    assert fake.asked == [] and fake.launched == 0
    assert done.problems == ["kube-proxy: health checks not served: the lab's echo server is stopped (pid 4242)"]
    assert health.drift(lab(), "sudo netlab up --lab x") == [
        "kube-proxy: health checks not served: the lab's echo server is stopped (pid 4242)"]


def test_the_health_checks_date_is_go_s_http_time_format():
    from netlab.workload.echo import fixed_response, http_date

    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT" and http_date(1136214245) == "Mon, 02 Jan 2006 15:04:05 GMT"
    answer = fixed_response(503, b'{\n\t"localEndpoints": 0\n}', now=1136214245)
    assert answer.split(b"\r\n\r\n")[0].split(b"\r\n")[3:6] == [
        b"X-Load-Balancing-Endpoint-Weight: 0", b"Connection: close", b"Date: Mon, 02 Jan 2006 15:04:05 GMT"]
