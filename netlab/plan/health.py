"""kube-proxy's service health checks: what each node answers on a Service's healthCheckNodePort.

A LoadBalancer Service with ``externalTrafficPolicy: Local`` gets a
healthCheckNodePort (model/nodeports.py). kube-proxy on every node serves HTTP
there (pkg/proxy/healthcheck/service_health.go), so that a cloud balancer
sends the Service's traffic only to nodes with an endpoint of their own: any
path, ``200 OK`` when the node has local endpoints, ``503 Service
Unavailable`` when it has none, and this body (tabs, no final newline)::

    {
    	"service": {
    		"namespace": "default",
    		"name": "web"
    	},
    	"localEndpoints": 1,
    	"serviceProxyHealthy": true
    }

``localEndpoints`` counts the Service's distinct ready endpoints ("IP:port",
any of its ports) on that node (EndpointsMap.LocalReadyEndpoints); every
endpoint of a lab is ready.

kube-proxy's own health server (pkg/proxy/healthcheck/proxy_health.go) listens
on every node, whatever its Services, on ``healthzBindAddress``, 0.0.0.0:10256
(:class:`ProxyHealth`): ``/healthz``, which cloud load balancers ask for
Cluster Services (KEP-3836), and ``/livez``; what it answers is
workload/proxyhealth.py's. A lab's kube-proxy is always synced and its nodes
are never tainted for deletion, so both answer 200, ``nodeEligible`` true.

The lab's echo server answers for kube-proxy (workload/health.py), in each
node's namespace. Pure: no kernel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from netlab.model.fields import KUBE_PROXY_HEALTHZ_PORT
from netlab.model.lab import Lab
from netlab.plan.services import ServicePortInfo, service_ports


@dataclass(frozen=True)
class HealthCheck:
    """One node's health check of one Service."""

    node: str
    netns: str
    port: int
    namespace: str
    name: str
    local: int  # the Service's endpoints on this node

    @property
    def key(self) -> str:
        return f"health/{self.node}/{self.namespace}/{self.name}"

    @property
    def status(self) -> int:
        return 200 if self.local else 503

    def body(self) -> str:
        """kube-proxy's answer, byte for byte (Go's %q of a Kubernetes name is its JSON string)."""
        return (f'{{\n\t"service": {{\n\t\t"namespace": {json.dumps(self.namespace)},\n'
                f'\t\t"name": {json.dumps(self.name)}\n\t}},\n\t"localEndpoints": {self.local},\n'
                '\t"serviceProxyHealthy": true\n}')

    def spec(self) -> dict[str, object]:
        """What the lab's echo server is asked to serve (echoserver.EchoServer.sync_health)."""
        return {"id": self.key, "netns": self.netns, "node": self.node, "port": self.port, "status": self.status,
                "body": self.body()}

    def what(self) -> str:
        return f"health check of Service {self.namespace}/{self.name} on node {self.node} (port {self.port}/TCP)"


def health_checks(lab: Lab) -> list[HealthCheck]:
    """Every node's health check of every Service that has one, in node then Service order (none, without
    working out the Services' ports, for a lab without such a Service)."""
    if not any(s.needs_health_check for s in lab.services):
        return []
    # (namespace, name) -> its healthCheckNodePort and its ports
    checked: dict[tuple[str, str], tuple[int, list[ServicePortInfo]]] = {}
    for sp in service_ports(lab):
        if sp.health_check_node_port is not None:
            checked.setdefault((sp.svc.namespace, sp.svc.name), (sp.health_check_node_port, []))[1].append(sp)
    return [HealthCheck(node.name, node.netns, port, ns, name,
                        len({(ip, p) for sp in sps for ip, p in sp.local_endpoints(node.name)}))
            for node in lab.nodes for (ns, name), (port, sps) in checked.items()]


@dataclass(frozen=True)
class ProxyHealth:
    """kube-proxy's health server on one node (/healthz and /livez on port 10256)."""

    node: str
    netns: str
    port: int = KUBE_PROXY_HEALTHZ_PORT
    status: int = 200  # synced, and the node eligible: healthy
    local: int = -1  # no localEndpoints: the echo server's answer for "none" (echoserver.health_served)

    @property
    def key(self) -> str:
        return f"healthz/{self.node}"

    def spec(self) -> dict[str, object]:
        """What the lab's echo server is asked to serve: kube-proxy's answers by path (workload/proxyhealth.py)."""
        return {"id": self.key, "netns": self.netns, "node": self.node, "port": self.port, "status": self.status,
                "body": "", "proxy": True}

    def what(self) -> str:
        return f"kube-proxy's health server on node {self.node} (port {self.port}/TCP: /healthz, /livez)"


def proxy_health(lab: Lab) -> list[ProxyHealth]:
    """kube-proxy's health server on every node, in node order."""
    return [ProxyHealth(node.name, node.netns) for node in lab.nodes]
