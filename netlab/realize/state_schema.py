"""The strict schema of a lab's ``state.json``, checked on every load.

The state file is what ``down`` trusts, so a file that is binary, a JSON list,
of the wrong types, from another version, or names anything that is not the
lab's (a namespace outside ``<lab>-*``, a path that is not netlab's) is
refused as a whole with one line, never half-used. Nothing read from it ever
becomes a path to delete: paths are derived from the lab and namespace names,
and the few recorded ones must equal what those names give.

The records under ``extra`` belong to the features (netlab.services.lifecycle,
netlab.workload.lifecycle, netlab.impair.lifecycle); their shapes are typed here so that a wrong type
is caught on load instead of deep inside ``down``. A feature that adds a
record adds its model here.

Across releases (docs/json.md, "The state file"): a record under ``extra`` this release does not know, and a
top-level key it does not know, are a newer release's, taken as they are (any JSON), never read, and written back
as they were (LabState.unknown for the top-level ones); a known record of the wrong shape is still corrupt. What an
earlier release must not act on without understanding it raises the state's format ``version``: a state of a
later format is refused as a newer netlab's (NewerFormat), not as a corrupt one; so is a state of a later revision
of this format (``revision``, STATE_REVISION: a field a known record gained, a topology field) that this schema
refuses.
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictFloat,
                      StrictBool, StrictInt, StrictStr, Tag, ValidationError, model_validator)
from pydantic import Strict as StrictMode
from pydantic_core import from_json

from netlab.model.naming import DNS_LABEL, ETC_NETNS, check_chain, check_ifname, check_netns, is_netns
from netlab.plan.sysctls import KERNEL_DEVCONF
from netlab.realize.state_dir import STATE_REVISION, STATE_VERSION

if TYPE_CHECKING:
    from netlab.model.topology import Topology

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
TABLES = ("filter", "nat", "mangle", "raw")
PATH_MAX = 4096


def _netns(value: str) -> str:
    return check_netns(value)


def _label(value: str) -> str:
    if not DNS_LABEL.fullmatch(value) or len(value) > 63:
        raise ValueError("not a DNS label")
    return value


def _port_name(value: str) -> str:
    """A Service port's name, or "" for the one unnamed port of a single-port Service."""
    return value if value == "" else _label(value)


def _chain_key(value: str) -> str:
    netns, _, table = value.partition("/")
    check_netns(netns)
    if table not in TABLES:
        raise ValueError(f"unknown table {table[:20]!r}")
    return value


def _chain(value: str) -> str:
    return check_chain(value)


def _absolute(value: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise ValueError("not an absolute path")
    return value


def _address(value: str) -> str:
    IPv4Address(value)  # its ValueError says why
    return value


def _network(value: str) -> str:
    IPv4Network(value)
    return value


def _integer(value: Any) -> Any:
    # JSON's true and 1.0 are equal to 1 in Python, so a Literal[1] takes them: a version is an integer.
    if type(value) is not int:
        raise ValueError("should be an integer")
    return value


Version1 = Annotated[Literal[1], BeforeValidator(_integer)]
Version2 = Annotated[Literal[2], BeforeValidator(_integer)]
Revision = Annotated[StrictInt, BeforeValidator(_integer), Field(ge=1)]
NetnsName = Annotated[StrictStr, AfterValidator(_netns)]
Label = Annotated[StrictStr, AfterValidator(_label)]
Path = Annotated[StrictStr, Field(max_length=PATH_MAX)]
PortNumber = Annotated[StrictInt, Field(ge=1, le=65535)]
PortName = Annotated[StrictStr, AfterValidator(_port_name)]
IfName = Annotated[StrictStr, AfterValidator(check_ifname)]

# A row: a JSON array of a fixed length and typed items (a tuple here). check_state validates the
# parsed file, in which an array is a list, and a strict tuple takes nothing but a tuple: the row
# itself is lax (a list or a tuple; of what JSON gives, a list only), each item in it strict.
ROW = StrictMode(False)
# (ClusterIP, port, nodePort, endpoint IP, endpoint port) of a UDP Service port; (ClusterIP, port, nodePort)
# of one without endpoints
UdpEndpoint = Annotated[tuple[StrictStr, StrictInt, StrictInt | None, StrictStr, StrictInt], ROW]
UdpNoEndpoint = Annotated[tuple[StrictStr, StrictInt, StrictInt | None], ROW]
CniArg = Annotated[tuple[StrictStr, StrictStr], ROW]
CniNetwork = Annotated[tuple[dict[StrictStr, Any], IfName], ROW]


class Strict(BaseModel):
    # Built when a state is first checked, the records inside the StateFile's validator (see model.fields.Model).
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class PlanEntry(BaseModel):
    """One plan resource (Resource.to_json) as older netlab versions saved them: still checked (a state of
    such a version is loaded), never used; new states save an empty list."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)
    kind: Literal["netns", "sysctl", "loopback", "bridge", "veth", "veth-peer", "vxlan", "address", "route", "rule",
                  "neigh", "fdb", "nat", "nft"]
    netns: NetnsName


Made = Literal["intent", "created"]  # recorded before it is made, then after


class ServicesRecord(Strict):
    """netlab.services.lifecycle (version 2): the pods' resolv.conf and hosts files and /etc/netns directories
    it made, by namespace name (paths are derived from the names), UDP endpoints, chains."""

    version: Version2
    resolv: dict[NetnsName, Made]
    hosts: dict[NetnsName, Made] = {}  # absent in the states of a netlab before the pods' hosts files
    dirs: dict[NetnsName, Made]
    etc_netns: Made | None = None
    udp: list[UdpEndpoint]
    udp_empty: list[UdpNoEndpoint]
    chains: dict[Annotated[StrictStr, AfterValidator(_chain_key)], list[Annotated[StrictStr, AfterValidator(_chain)]]]


class ServicesRecordV1(Strict):
    """Version 1 recorded paths; they must be the paths the namespace names give (converted on load)."""

    version: Version1
    resolv: dict[NetnsName, Path]
    dirs: list[Path]
    udp: list[UdpEndpoint]
    udp_empty: list[UdpNoEndpoint]
    chains: dict[Annotated[StrictStr, AfterValidator(_chain_key)], list[Annotated[StrictStr, AfterValidator(_chain)]]]

    @model_validator(mode="after")
    def _paths_are_derived(self) -> "ServicesRecordV1":
        for netns, path in self.resolv.items():
            if path != os.path.join(ETC_NETNS, netns, "resolv.conf"):
                raise ValueError(f"resolv.{netns}: {path[:60]!r} is not that namespace's resolv.conf")
        for path in self.dirs:
            parent, name = os.path.split(path)
            if path != ETC_NETNS and (parent != ETC_NETNS or not is_netns(name)):
                raise ValueError(f"dirs: {path[:60]!r} is not a directory netlab makes")
        return self


EnvDigest = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{16}$")]


class ContainerRecord(Strict):
    argv: list[StrictStr]
    log: Path
    restarts: StrictInt
    pid: StrictInt | None = None
    start: StrictInt | None = None
    # The netns it started in: (st_dev, st_ino, the pin's change time), or the first two (an older netlab).
    net: (Annotated[tuple[StrictInt, StrictInt, StrictInt], ROW] | Annotated[tuple[StrictInt, StrictInt], ROW]
          | None) = None
    error: StrictStr | None = None
    # How the run before this one exited, where known (the kubelet's lastState.terminated.exitCode).
    last_exit_code: StrictInt | None = None
    # The cluster DNS's dnsmasq only: the sha256 of the records file it last read (workload/dns_records.py, KEY).
    records: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    # And the records file as it was then (inode, size, mtime and ctime in ns), and the size of its log then: a
    # read the log shows past netlab's own, of a file changed since, is a read not at netlab's hand (status).
    records_file: Annotated[tuple[StrictInt, StrictInt, StrictInt, StrictInt], ROW] | None = None
    records_log: Annotated[StrictInt, Field(ge=0)] | None = None
    # A command container's run: the id in its environment (workload/unrecorded.py), recorded before it starts,
    # and, while its pid is not recorded yet, the cluster DNS's dnsmasq it replaces (pid, start time).
    id: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    replaces: Annotated[tuple[StrictInt, StrictInt], ROW] | None = None
    # The size of its log as it was written ahead (the run's own output starts there), and, once a later `up`
    # found no process of it but its output in the log, that it ran and exited unrecorded (pid, exit code unknown).
    log_at: Annotated[StrictInt, Field(ge=0)] | None = None
    ran: StrictBool | None = None
    # The Service variables it started with (workload/containers.service_env), kept while it runs as the runtime
    # keeps a container's spec: `netlab exec -c` gives them. The digest naming them in its WorkloadRecord's
    # service_envs (workload/service_envs.py); the variables themselves in a record of the netlab that copied them
    # into each; absent in the records of a netlab before it.
    service_env: EnvDigest | dict[StrictStr, StrictStr] | None = None


class PodRecord(Strict):
    netns: NetnsName
    uts: Path
    # When up first made the pod (seconds since the epoch): its creationTimestamp, kept when the sandbox is made
    # again; absent in the states of a netlab before it (the sandbox's time is then shown).
    created: Annotated[StrictFloat | StrictInt, Field(gt=0, lt=2**40)] | None = None
    containers: dict[Label, ContainerRecord] = {}


class WorkloadRecord(Strict):
    """netlab.workload.lifecycle: each pod's UTS namespace and containers (pid, start time, argv)."""

    version: Version1
    pods: dict[Label, PodRecord]
    health: StrictInt = 0  # kube-proxy's health checks the lab's echo server was told to serve (workload/health.py)
    # Each set of Service variables containers started with, once, by the digest their records name it by
    # (workload/service_envs.py); absent in the states of a netlab before it.
    service_envs: dict[EnvDigest, dict[StrictStr, StrictStr]] = {}


class RuntimeImpairment(Strict):
    spec: dict[Literal["rate", "delay", "jitter", "loss"], StrictStr | None]
    at: StrictStr  # when `netlab impair` set it (ISO 8601, UTC)
    # what the lab's file gives the interface (its topology's before the first run-time edit; absent: an older
    # netlab's record): an impair that puts it back drops the record
    file: dict[Literal["rate", "delay", "jitter", "loss"], StrictStr | None] | None = None


class ImpairRecord(Strict):
    """netlab.impair.lifecycle: interfaces it put qdiscs on; impairments set at run time ("<netns>:<iface>")."""

    shaped: dict[NetnsName, list[IfName]]
    runtime: dict[StrictStr, RuntimeImpairment]


class CniAttachmentRecord(Strict):
    ip: StrictStr
    mac: StrictStr | None = None
    host_veth: IfName | None = None
    host_mac: StrictStr | None = None
    host_ifaces: list[IfName] = []
    gateway: StrictStr | None = None
    prefixlen: Annotated[StrictInt, Field(ge=0, le=32)] | None = None  # eth0's on-link prefix, as the result gave it


class CniPodRecord(Strict):
    """One pod's CNI attachment: its sandbox id, namespaces, the networks (config, ifname) it was ADDed to, the
    capability arguments of its ADD (the DEL after a failed ADD has no cached ones). Phase "deleted": its ADD
    failed and the DEL that followed ran; the attachment it had before, if any, names the plugins' node devices.
    Phase "detaching": a re-attach's DEL is about to run or ran, its ADD has not (cni/lifecycle.py). containerId: the
    sandbox's own, new for each sandbox (cni/conf.new_container_id); its DEL uses it. Phase "terminated": the pod's
    containers exited for good and its stopped sandbox's DEL ran (cni/terminated.py); the attachment it had stays
    (the pod's IP, as the API keeps a Completed pod's podIP)."""

    phase: Literal["adding", "added", "detaching", "deleted", "terminated"]
    node: Label
    containerId: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    netns: NetnsName
    node_netns: NetnsName
    args: list[CniArg]
    networks: list[CniNetwork]
    attachment: CniAttachmentRecord | None = None
    capabilityArgs: dict[StrictStr, Any] | None = None
    check_fails: StrictStr | None = None  # how its chain failed its own fresh ADD (cni/changed.fresh_mark)
    unchecked: StrictBool = False  # no CHECK ran since its ADD (cni/first_check.py)
    del_failed: StrictBool = False  # a DEL of it failed: the next DEL runs it again
    # its network namespace was deleted under it (the kubelet's SandboxChanged): its sandbox's DEL runs with an empty
    # CNI_NETNS, then a new sandbox (a new containerId) is ADDed (cni/lifecycle.py)
    sandbox_gone: StrictBool = False


class CniRecord(Strict):
    """netlab.cni.lifecycle: what a rollback or down DELs; ``devices``: by node namespace, the devices the plugins
    keep there (a bridge), from the chains' configs before each ADD and the results after: theirs while the node
    lives, whether or not a pod is attached (an older netlab's record has none)."""

    pods: dict[Label, CniPodRecord]
    devices: dict[NetnsName, list[IfName]] = {}


Address = Annotated[StrictStr, AfterValidator(_address)]
Network = Annotated[StrictStr, AfterValidator(_network)]


class AddressesRecord(Strict):
    """netlab.lab.up: the addresses the lab's pods ([namespace, node, node's podCIDR, ip] by name), Services
    ([namespace, name, ClusterIP]), nodes ([underlay ip, podCIDR] by name) and LoadBalancer Services ([namespace,
    name, external ip]) hold, and the nodePorts of the Services' ports ([namespace, name, port name ("": unnamed),
    nodePort]) and their healthCheckNodePorts ([namespace, name, port]), and the nodes with portmap's shared chains
    (builtin) and with cni0, which the next up keeps (model/addressing.py's Held.to_json). An older netlab's record
    has no nodes, load_balancers, node_ports, health_checks, portmap_nodes nor bridge_nodes, or node_ports rows
    [namespace, name, port, protocol, nodePort]."""

    pods: dict[Label, Annotated[tuple[Label, Label, Network, Address], ROW]]
    services: list[Annotated[tuple[Label, Label, Address], ROW]]
    nodes: dict[Label, Annotated[tuple[Address, Network], ROW]] | None = None
    load_balancers: list[Annotated[tuple[Label, Label, Address], ROW]] | None = None
    node_ports: list[Annotated[tuple[Label, Label, PortName, PortNumber], ROW]
                     | Annotated[tuple[Label, Label, PortNumber, Literal["TCP", "UDP"], PortNumber], ROW]] | None = None
    health_checks: list[Annotated[tuple[Label, Label, PortNumber], ROW]] | None = None
    portmap_nodes: list[Label] | None = None
    bridge_nodes: list[Label] | None = None  # the nodes with cni0 (model/lab.py, Lab.bridge_nodes)


def _services_version(record: Any) -> str | None:
    version = record.get("version") if isinstance(record, dict) else getattr(record, "version", None)
    return str(version) if type(version) is int else None


# The record's own "version" (an integer, not true) picks its schema, so an error names the field of that
# version's record (extra.services.1.resolv...), not the other version's "version" field.
Services = Annotated[Annotated[ServicesRecord, Tag("2")] | Annotated[ServicesRecordV1, Tag("1")],
                     Discriminator(_services_version, custom_error_type="services_version",
                                   custom_error_message="its version should be the integer 1 or 2")]


class OwnerRecord(Strict):
    """realize/owner.py: the process that brought the lab up and takes it down itself (the pytest plugin)."""

    by: Literal["pytest"]
    pid: Annotated[StrictInt, Field(gt=0)]
    start: Annotated[StrictInt, Field(ge=0)]  # field 22 of /proc/PID/stat
    boot: StrictStr  # /proc/sys/kernel/random/boot_id
    pidns: Annotated[StrictInt, Field(ge=0)]  # the inode of /proc/PID/ns/pid the pid is counted in


class StateFolderRecord(Strict):
    """realize/tags.py: the state folder the lab's namespaces name in their tag (its path, as realpath gave it when
    the lab was made, and the tag's hash of it). Never a path to delete: said to the user only."""

    path: Path
    tag: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{8}$")]


class DownFailedRecord(Strict):
    """lab/teardown.py: the ``down`` that set phase ``deleting`` and ended with an error (its pid, its line), so
    that ``list`` says so rather than "killed" (realize/interrupted.stalled)."""

    pid: Annotated[StrictInt, Field(gt=0)]
    error: StrictStr


class ConvergingRecord(Strict):
    """realize/converging.py: an ``up`` of the running lab at work (its write-ahead to its last write), and what
    its topology changes, so that one killed halfway is said (realize/interrupted.stalled)."""

    changes: list[StrictStr]


class Extra(Strict):
    # A record this release does not know is a newer release's: kept, unread (the known ones stay strict).
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    services: Services | None = None
    workload: WorkloadRecord | None = None
    cni: CniRecord | None = None
    impair: ImpairRecord | None = None
    # netlab.lab.up: links the kernel put in each new namespace (fallback tunnels), left alone
    kernel_links: dict[NetnsName, list[IfName]] | None = None
    # netlab.lab.up: settings a new namespace got from the host, set back to the kernel's (plan/sysctls.py)
    restored_devconf: list[Literal[tuple(KERNEL_DEVCONF)]] | None = None  # type: ignore[valid-type]
    addresses: AddressesRecord | None = None
    owner: OwnerRecord | None = None
    state_folder: StateFolderRecord | None = None
    down_failed: DownFailedRecord | None = None
    converging: ConvergingRecord | None = None
    # netlab.realize.backend: the iptables backend the lab was made in, which every later command uses
    iptables: Literal["nft", "legacy"] | None = None
    # netlab.cni.paths: the folders a CNI lab's machine plugins are in (NETLAB_CNI_PATH, or Debian's), absolute
    cni_path: list[Annotated[StrictStr, AfterValidator(_absolute)]] | None = None
    # netlab.services.flannel_files: per node, the sha256 of each Flannel file up last wrote (edited vs topology's)
    flannel_files: dict[Label, dict[Path, Annotated[StrictStr, Field(pattern="^[0-9a-f]{64}$")]]] | None = None
    # netlab.cni.host_writes: what the lab's plugins wrote outside it (under /var/lib/cni), absolute, never removed
    cni_host_writes: list[Annotated[StrictStr, AfterValidator(_absolute)]] | None = None


class StateFile(Strict):
    # A top-level key this release does not know is a newer release's: kept (LabState.unknown), unread.
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    version: Version1
    revision: Revision | None = None  # STATE_REVISION of the netlab that wrote it; none before there was one
    lab: StrictStr
    run_id: Annotated[StrictStr, Field(pattern=RUN_ID.pattern)]
    phase: Literal["creating", "up", "failed", "deleting"]
    source: Path | None
    topology: dict[StrictStr, Any]
    netns: dict[NetnsName, Literal["intent", "created"]]
    plan: list[PlanEntry]
    extra: Extra


def check_state(raw: bytes, lab: str) -> tuple[dict[str, Any], Topology]:
    """The state file's data and its topology when it is a valid state of ``lab``; ValueError saying
    why not (one line).

    The file is parsed once, by the parser model_validate_json uses (so exactly the same files are
    JSON), and the parsed data, which the LabState then holds, is validated as it is; its topology
    once too (LabState.model() takes that model). A refused file is validated again as JSON text,
    only to say why in JSON's words ("should be an object", not "a valid dictionary or instance of
    StateFile").
    """
    from netlab.model.topology import Topology

    try:
        data = from_json(raw)
    except ValueError as exc:  # not JSON
        raise ValueError(_refusal(raw, exc)) from None
    newer_format(data)  # a later format's fields are not this schema's to judge
    try:
        parsed = StateFile.model_validate(data)
    except ValueError as exc:  # not a state, or a later revision's
        raise refused(data, _refusal(raw, exc)) from None
    if parsed.lab != lab:
        raise ValueError(f"it describes lab {parsed.lab[:40]!r}, not {lab!r}")
    for name in parsed.netns:
        if not name.startswith(lab + "-"):
            raise ValueError(f"netns: {name!r} is not a namespace of lab {lab} ({lab}-*)")
    try:
        topo = Topology.model_validate(data["topology"])
    except ValidationError as exc:
        raise refused(data, "topology: " + _first_error(exc)) from None
    if topo.name != lab:
        raise ValueError(f"topology: its name is {topo.name!r}, not {lab!r}")
    return data, topo


class NewerFormat(ValueError):
    """A state of a later format than this release's (its ``version``): a newer netlab's, which this one cannot
    read (state.StateNewer says so)."""


def newer_format(data: Any) -> None:
    """NewerFormat when ``data`` is a state of a format after STATE_VERSION (an integer ``version``: any other
    value is a corrupt state's, which the schema names)."""
    version = data.get("version") if isinstance(data, dict) else None
    if type(version) is int and version > STATE_VERSION:
        raise NewerFormat(f"state format {version}; this netlab reads state format {STATE_VERSION}")


def refused(data: Any, why: str) -> ValueError:
    """The error of a state this netlab's schema refuses (``why``): a newer netlab's (NewerFormat) when a later
    revision of the format wrote it, whose fields and values this netlab does not know; else a corrupt state's."""
    revision = data.get("revision") if isinstance(data, dict) else None
    if type(revision) is int and revision > STATE_REVISION:
        return NewerFormat(f"state format {STATE_VERSION}, revision {revision}; this netlab reads state format "
                           f"{STATE_VERSION} up to revision {STATE_REVISION}, not {why}")
    return ValueError(why)


def _refusal(raw: bytes, exc: ValueError) -> str:
    """Why check_state refused a file, as validating the JSON text words it."""
    try:
        StateFile.model_validate_json(raw)
    except ValidationError as as_json:
        return _first_error(as_json)
    # Both validations accept the same files; should they ever differ, the file is still refused.
    return _first_error(exc) if isinstance(exc, ValidationError) else f"the file: Invalid JSON: {exc}"


def _first_error(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``field.path: message`` (never the offending value)."""
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "the file"
    msg = " ".join(str(err["msg"]).split())
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where[:80]}: {msg[:160]}{more}"
