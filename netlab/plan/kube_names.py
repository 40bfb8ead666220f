"""kube-proxy's iptables-mode chain names (pkg/proxy/iptables/proxier.go): ``KUBE-SVC-`` + the first 16
characters of base32(sha256("<namespace>/<name>:<port name>" + "tcp")), and the same for KUBE-EXT, KUBE-FW and
KUBE-SVL; ``KUBE-SEP-`` over the service port, protocol and ``ip:port`` of the endpoint."""

from __future__ import annotations

import hashlib

from netlab.model import naming
from netlab.model.topology import Service, ServicePort


def _b32_16(data: bytes) -> str:
    """First 16 characters of base32(data): the first 10 bytes are exactly 16 symbols."""
    value = int.from_bytes(data[:10], "big")
    return "".join(_B32[(value >> shift) & 31] for shift in range(75, -1, -5))


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol))[:16]."""
    return _b32_16(hashlib.sha256((service_port_name + protocol).encode()).digest())


def service_port_name(svc: Service, port: ServicePort) -> str:
    """``ServicePortName.String()``: ``namespace/name`` plus ``:portname`` when named."""
    return f"{svc.namespace}/{svc.name}" + (f":{port.name}" if port.name else "")


def svc_chain(spn: str, protocol: str) -> str:
    return naming.check_chain("KUBE-SVC-" + port_proto_hash(spn, protocol))


def ext_chain(spn: str, protocol: str) -> str:
    return naming.check_chain("KUBE-EXT-" + port_proto_hash(spn, protocol))


def fw_chain(spn: str, protocol: str) -> str:
    """kube-proxy's serviceFirewallChainName: loadBalancerSourceRanges' check of the balancer's IP."""
    return naming.check_chain("KUBE-FW-" + port_proto_hash(spn, protocol))


def svl_chain(spn: str, protocol: str) -> str:
    """kube-proxy's localPolicyChainName: the chain of a node's own endpoints (traffic policy Local)."""
    return naming.check_chain("KUBE-SVL-" + port_proto_hash(spn, protocol))


def sep_chain(spn: str, protocol: str, endpoint: str) -> str:
    """kube-proxy's servicePortEndpointChainName; ``endpoint`` is ``ip:port``."""
    digest = hashlib.sha256((spn + protocol + endpoint).encode()).digest()
    return naming.check_chain("KUBE-SEP-" + _b32_16(digest))
