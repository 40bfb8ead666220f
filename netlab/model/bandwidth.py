"""A pod's bandwidth annotations, as the kubelet and containerd read them for the CNI ``bandwidth`` capability.

``kubernetes.io/ingress-bandwidth`` and ``kubernetes.io/egress-bandwidth`` are
resource quantities in bits per second (``10M``, ``1Mi``, ``1.5e6``), each
1k to 1P (the kubelet's ``ExtractPodBandwidthResources``). containerd's CRI
plugin hands them to the plugins that declare ``bandwidth`` (``toCNIBandWidth``),
only when the pod has one, with the burst at its maximum::

    runtimeConfig.bandwidth: {"ingressRate": 10000000, "ingressBurst": 4294967295, "egressRate": 0, "egressBurst": 0}

A rate not given is 0 (the plugin leaves that direction alone). As for
hostPort (model/hostports.py), netlab refuses them where no plugin would get
them: its builtin pod network shapes with ``impair`` instead. Pure.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from netlab.model.location import Loc
from netlab.model.topology import CniConflist, Pod, Topology

CAPABILITY = "bandwidth"
INGRESS, EGRESS = "kubernetes.io/ingress-bandwidth", "kubernetes.io/egress-bandwidth"
MAX_BURST = 4294967295  # containerd: math.MaxUint32
MIN_RATE, MAX_RATE = 1000, 10 ** 15  # the kubelet's 1k and 1P
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_SUFFIX = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10) ** 3,
           "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
           "E": Decimal(10) ** 18,
           **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate("Ki Mi Gi Ti Pi Ei".split())}}


def rate(text: str) -> int:
    """A quantity's Value() (rounded up, as resource.Quantity does); ValueError naming what is wrong."""
    m = _QUANTITY.fullmatch(text.strip()) if text == text.strip() else None
    if m is None:
        raise ValueError(f"{text!r} is not a quantity like 10M, 1Mi or 500k (bits per second)")
    number, suffix = m.groups()
    try:
        scale = _SUFFIX[suffix] if suffix in _SUFFIX else Decimal(10) ** int(suffix[1:]) if suffix else Decimal(1)
        value = int((Decimal(number) * scale).to_integral_value(ROUND_CEILING))
    except (InvalidOperation, OverflowError, ValueError):
        raise ValueError(f"{text!r} is not a quantity like 10M, 1Mi or 500k (bits per second)") from None
    if value < MIN_RATE:
        raise ValueError(f"{text} is unreasonably small (< 1kbit), as the kubelet says")
    if value > MAX_RATE:
        raise ValueError(f"{text} is unreasonably large (> 1Pbit), as the kubelet says")
    return value


def pod_bandwidth(pod: Pod) -> dict[str, Any] | None:
    """``runtimeConfig.bandwidth`` of a pod, as containerd builds it; None without either annotation."""
    ingress, egress = pod.annotations.get(INGRESS), pod.annotations.get(EGRESS)
    if ingress is None and egress is None:
        return None
    out = {"ingressRate": 0, "ingressBurst": 0, "egressRate": 0, "egressBurst": 0}
    if ingress is not None:
        out.update(ingressRate=rate(ingress), ingressBurst=MAX_BURST)
    if egress is not None:
        out.update(egressRate=rate(egress), egressBurst=MAX_BURST)
    return out


def declares(plugins: Any) -> bool:
    return any(isinstance(p, dict) and isinstance(p.get("capabilities"), dict)
               and p["capabilities"].get(CAPABILITY) is True for p in plugins)


def first_annotation(topo: Topology) -> Loc | None:
    return next((("pods", i, "annotations", key) for i, pod in enumerate(topo.pods) for key in (INGRESS, EGRESS)
                 if key in pod.annotations), None)


def check_bandwidth(topo: Topology) -> list[tuple[Loc, str]]:
    """Each bandwidth annotation a quantity the kubelet takes, and only where a CNI plugin gets it."""
    out: list[tuple[Loc, str]] = []
    cni = topo.network.cni
    for i, pod in enumerate(topo.pods):
        for key in (INGRESS, EGRESS):
            if key not in pod.annotations:
                continue
            loc: Loc = ("pods", i, "annotations", key)
            if not isinstance(cni, CniConflist):
                out.append((loc, f"{key} needs a CNI plugin with the bandwidth capability, and network.cni {cni} "
                                 "runs none; use the pod's impair: {eth0: {rate: ...}}, or network.cni "
                                 "{conflist: FILE} with the bandwidth plugin"))
                continue
            try:
                rate(pod.annotations[key])
            except ValueError as exc:
                out.append((loc, str(exc)))
    return out
