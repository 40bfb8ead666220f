"""Every kernel-visible name and MAC address netlab makes, generated here.

Names come from the lab name plus a short hash where the kernel limits length
(15 bytes for an interface, 28 for an iptables chain), like kube-proxy's
``servicePortChainName`` and the CNI plugins' ``veth`` + 8 hex digits. Every
generated name is checked against a safe alphabet, so no input can turn a
namespace name into a path or break an ``iptables-restore`` payload.
"""

from __future__ import annotations

import re
from typing import Any

from netlab.model import digest
from netlab.model.location import show, yaml_kind

# ip-netns(8)'s two folders on the host, where every tool that names namespaces looks: a named namespace
# is a mount at NETNS_DIR/NAME, and `ip netns exec NAME` bind-mounts each file of ETC_NETNS/NAME over
# its /etc namesake (how a pod's processes see the kubelet's resolv.conf and hosts files).
NETNS_DIR = "/run/netns"
ETC_NETNS = "/etc/netns"



def pod_file_marker(lab: str) -> str:
    """netlab's first line in every file it writes for a pod of lab ``lab`` under ETC_NETNS/<pod namespace>/
    (resolv.conf, hosts): what proves the file is the lab's when nothing else does. A lab name is a DNS label
    (no ':'), so lab ``ab``'s marker begins no other lab's."""
    return f"# netlab {lab}:"


IFNAMSIZ = 15  # bytes, without the trailing NUL
CHAIN_MAX = 28  # XT_EXTENSION_MAXNAMELEN - 1 minus room kube-proxy keeps
NETNS_MAX = 63

# A DNS label (RFC 1123), as Kubernetes requires for most names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63
# A DNS-1035 label: a DNS label that starts with a letter, what the API server takes as a Service's name
# (ValidateServiceName = NameIsDNS1035Label): the name is a DNS label of its own (<name>.<namespace>.svc).
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A DNS subdomain (RFC 1123): DNS labels joined by dots, at most 253 characters, what the API server takes for most
# objects' names, a NetworkPolicy's among them (ValidateNetworkPolicyName = NameIsDNSSubdomain).
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SUBDOMAIN_MAX = 253
CLUSTER_DOMAIN = "cluster.local"  # the kubelet's clusterDomain: the cluster DNS's zone
LAB_NAME_MAX = 24  # a lab name prefixes every namespace name
_SAFE_NETNS = DNS_LABEL
_SAFE_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_CHAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # portmap: CNI-DN-<lowercase hex>

# Interface names inside the lab are the real ones the tutorials show.
POD_IF = "eth0"
NODE_IF = "eth0"
BRIDGE = "cni0"
UNDERLAY_BRIDGE = "br0"


def dns_label_problem(value: str) -> str | None:
    """What keeps a name from being a DNS label, or None."""
    if len(value) > NAME_MAX:
        return f"{show(value, 30)} is {len(value)} characters; names are at most {NAME_MAX}, shorten it"
    if not DNS_LABEL.fullmatch(value):
        return (f"{show(value, 30)} is not a DNS label; use lower-case letters, digits and '-', "
                "starting and ending with a letter or digit")
    return None


def dns_1035_label_problem(value: str) -> str | None:
    """What keeps a name from being a DNS-1035 label (a DNS label that starts with a letter), or None."""
    problem = dns_label_problem(value)
    if problem is None and not DNS_1035_LABEL.fullmatch(value):
        return (f"{show(value, 30)} is not a DNS-1035 label, as a Service's name must be; start it with a "
                "lower-case letter (then letters, digits and '-', ending with a letter or digit)")
    return problem


def dns_subdomain_problem(value: str) -> str | None:
    """What keeps a name from being a DNS subdomain (DNS labels joined by dots, at most 253), or None."""
    if len(value) > SUBDOMAIN_MAX:
        return f"{show(value, 30)} is {len(value)} characters; names are at most {SUBDOMAIN_MAX}, shorten it"
    if not DNS_SUBDOMAIN.fullmatch(value):
        return (f"{show(value, 30)} is not a DNS subdomain; use lower-case letters, digits, '-' and '.', "
                "each part between dots starting and ending with a letter or digit")
    return None


def lab_name_problem(value: Any) -> str | None:
    """What is wrong with a lab name, or None: one rule for a topology's ``name:``
    and for every ``--lab`` value, which becomes a directory name under the state root."""
    if not isinstance(value, str):
        return f"must be a string, not {yaml_kind(value)}"
    if len(value) > LAB_NAME_MAX:
        return (f"{show(value, 30)} is {len(value)} characters; a lab name is at most {LAB_NAME_MAX} "
                "(it prefixes every namespace name), shorten it")
    return dns_label_problem(value)


def short_hash(*parts: str, length: int = 8) -> str:
    """Stable hex digest of the parts (sha256, truncated)."""
    return digest.sha256("\0".join(parts).encode()).hexdigest()[:length]


def check_netns(name: str) -> str:
    if len(name) > NETNS_MAX or not _SAFE_NETNS.fullmatch(name) or ".." in name:
        raise ValueError(f"unsafe namespace name {name!r}")
    return name


def netns_path(name: str) -> str:
    """Where the named namespace is mounted (ip-netns(8)): what CNI_NETNS and a setns(2) open name. A path only,
    so reading a lab (a CNI runtime's config, validate) needs no code that enters namespaces."""
    return f"{NETNS_DIR}/{check_netns(name)}"


def is_netns(name: object) -> bool:
    """A safe namespace name (:func:`check_netns`), for a name read from a file rather than given."""
    try:
        return isinstance(name, str) and check_netns(name) == name
    except ValueError:
        return False


def check_ifname(name: str) -> str:
    if not 0 < len(name.encode()) <= IFNAMSIZ or not _SAFE_IFNAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"unsafe interface name {name!r}")
    return name


def check_chain(name: str) -> str:
    if not 0 < len(name) <= CHAIN_MAX or not _SAFE_CHAIN.fullmatch(name):
        raise ValueError(f"unsafe iptables chain name {name!r}")
    return name


def netns_name(lab: str, name: str) -> str:
    """``demo`` + ``fedora-1`` -> ``demo-fedora-1``."""
    return check_netns(f"{lab}-{name}")


def veth_name(lab: str, owner: str) -> str:
    """Host-side veth name, ``veth`` + 8 hex digits, as the CNI bridge plugin names them."""
    return check_ifname("veth" + short_hash(lab, owner))


def vxlan_name(vni: int) -> str:
    """Flannel names its VXLAN device ``flannel.<VNI>``."""
    return check_ifname(f"flannel.{vni}")


def mac_from_hash(*parts: str) -> str:
    """A locally administered unicast MAC that depends only on ``parts``.

    The form the kernel gives a device it makes a random address for
    (``eth_random_addr``): six random bytes, then in the first one the
    multicast bit (0x01) cleared and the locally administered bit (0x02) set.
    That is what today's CNI plugins (veth and bridge addresses chosen by the
    kernel) and Flannel (``flannel.1``) leave, so ``ip link`` shows addresses
    such as ``6e:1f:...`` or ``be:02:...``. Here the six bytes come from a
    hash of the lab's name and the device's role instead of the random pool,
    so the same file gives the same lab, MACs included.
    """
    mac = bytearray(digest.sha256("\0".join(parts).encode()).digest()[:6])
    mac[0] = (mac[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in mac)
