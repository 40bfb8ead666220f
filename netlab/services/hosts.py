"""Each pod's ``/etc/hosts``: the kubelet's managed hosts file.

In a real pod the kubelet bind-mounts a hosts file of its own over
``/etc/hosts`` of every container (kubernetes pkg/kubelet/kubelet_pods.go:
``makeHostsMount``, ``managedHostsFileContent``): a header line, the IPv4 and
IPv6 localhost lines, and the pod's IP with its hostname (``spec.hostname``,
else the pod's name), after its fully qualified name when it has a
``spec.subdomain``: ``<ip>\t<hostname>.<subdomain>.<namespace>.svc.cluster.local\t<hostname>``
(GeneratePodHostNameAndDomain). So in a pod ``hostname -i`` prints the pod's
IP, ``hostname -f`` its full name, and ``getent hosts <hostname>`` answers
without DNS (nsswitch's ``files`` come first).

netlab writes the same text to ``/etc/netns/<pod namespace>/hosts``, which
``ip netns exec``, netlab's containers and ``netlab exec`` bind-mount over
``/etc/hosts``, as it writes the pod's resolv.conf: the same records and the
same care (netns_files.py), for every pod of the lab, the cluster DNS pod
too (its ``dnsPolicy: Default`` changes only its resolv.conf). The one line
the kubelet does not write is netlab's first, a comment that says whose file
it is (netns_files.marker). A pod of a CNI lab that its plugins gave another
address gets that address here too: the features run again once the lab
follows the plugins (netlab.lab.up).

Not modelled, since a topology cannot say them: ``hostAliases`` (a block
``# Entries added by HostAliases.`` after the pod's line) and
``hostNetwork`` pods (the node's own hosts file under a header of its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.feature import Note, StartResult
from netlab.model.naming import CLUSTER_DOMAIN
from netlab.services import netns_files

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

KIND = "hosts"  # the services record's key, netns_files.FILES
# kubelet_pods.go: managedHostsHeader, then managedHostsFileContent's fixed lines, tab-separated.
HEADER = "# Kubernetes-managed hosts file.\n"
LOCALHOST = ("127.0.0.1\tlocalhost\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n"
             "fe00::0\tip6-localnet\n"
             "fe00::0\tip6-mcastprefix\n"
             "fe00::1\tip6-allnodes\n"
             "fe00::2\tip6-allrouters\n")


WITHOUT = f"does not get the kubelet's hosts file ({HEADER.strip()!r})"  # a pod with someone else's


def hosts_file(lab_name: str, pod: PodInfo) -> str:
    """What the kubelet writes for a pod without hostAliases, after netlab's line."""
    names = pod.hostname
    if pod.spec.subdomain:
        names = f"{pod.hostname}.{pod.spec.subdomain}.{pod.spec.namespace}.svc.{CLUSTER_DOMAIN}\t{pod.hostname}"
    return (f"{netns_files.marker(lab_name)} pod {pod.name}'s hosts file, as the kubelet writes it\n"
            f"{HEADER}{LOCALHOST}{pod.ip}\t{names}\n")


def with_files(lab: Lab) -> list[PodInfo]:
    """The pods netlab keeps files for in /etc/netns (hosts, resolv.conf): all but the terminal pods whose stopped
    sandbox's namespace up removed (plan/build.stopped_sandboxes: a CNI lab's), whose files went with it
    (services/lifecycle.release_stopped): nothing mounts them, and up writes them again if the pod runs again."""
    from netlab.plan.build import stopped_sandboxes

    stopped = stopped_sandboxes(lab)
    return [pod for pod in lab.pods if pod.netns not in stopped]


def wanted(lab: Lab) -> netns_files.Wanted:
    return {pod.netns: (pod.name, hosts_file(lab.name, pod)) for pod in with_files(lab)}


def sync(lab: Lab, state: LabState, rec: dict) -> StartResult:
    """Write every pod's hosts file (and take away those of pods the lab no longer has)."""
    return netns_files.sync(lab.name, state, rec, KIND, wanted(lab), without=WITHOUT)


def drift(lab: Lab, rec: dict) -> list[str]:
    """Pods whose hosts file is missing or not as the kubelet would write it; one someone else's file stands in
    for is said as up says it (a Note: up leaves it alone)."""
    out: list[str] = []
    for netns, (pod, text) in wanted(lab).items():
        if netns_files.left_alone(lab.name, rec, KIND, netns):
            out.append(Note(netns_files.left_alone_line(pod, netns, KIND, WITHOUT)))
            continue
        how = netns_files.differs(netns, KIND, text)
        if how is not None:
            out.append(f"hosts: {netns_files.file_path(netns, KIND)} is {how} (pod {pod} would not get the kubelet's "
                       "hosts file); up writes it again")
    return out
