"""Where a plugin's config holds the IPAM config that host-local reads, and its ``dataDir``: pure, nothing run.

host-local keeps a file per leased address in ``<dataDir>/<network name>``, ``dataDir`` defaulting to
/var/lib/cni/networks: on a real node its own disk; here the machine's, shared by every lab. A chain's plugin
hands host-local an IPAM config from one of these places:

- its own ``ipam`` (bridge, ptp, macvlan, ipvlan: they exec the IPAM plugin ``ipam.type`` names);
- Flannel's CNI plugin (``"type": "flannel"``) builds its delegate's ``ipam`` from its own ``ipam``, whose ``type``
  defaults to host-local, and an absent ``ipam`` is an empty one (flannel-io/cni-plugin, ``getDelegateIPAM``:
  ``ipam := n.IPAM``, ``type`` set to host-local when missing, ``ranges`` and ``routes`` replaced, every other
  key, ``dataDir`` too, kept); it refuses an ``ipam`` under its ``delegate`` ("'delegate' dictionary must not have
  'ipam' field");
- any other wrapper with a ``delegate``: its ``delegate.ipam``, which reaches host-local only when the wrapper
  hands its ``delegate`` on with that ``ipam`` (as Flannel hands on the rest of its ``delegate``). netlab cannot see
  what a wrapper does with it: ``netlab cni log`` shows what the wrapper got, the lab's folder what host-local kept.
"""

from __future__ import annotations

from typing import Any

HOST_LOCAL = "host-local"
FLANNEL = "flannel"


def _host_local(ipam: Any) -> bool:
    return isinstance(ipam, dict) and ipam.get("type") == HOST_LOCAL


def host_local_ipam(plugin: dict[str, Any]) -> tuple[str, ...] | None:
    """The keys to the IPAM config host-local gets from ``plugin`` (``("ipam",)``, ``("delegate", "ipam")``), or
    None when none of its config reaches host-local (another IPAM, or none). For flannel the ``ipam`` may be absent
    (host-local's defaults)."""
    ipam = plugin.get("ipam")
    if plugin.get("type") == FLANNEL:
        own = ipam is None or (isinstance(ipam, dict) and ipam.get("type", HOST_LOCAL) == HOST_LOCAL)
        return ("ipam",) if own else None
    if _host_local(ipam):
        return ("ipam",)
    delegate = plugin.get("delegate")
    if isinstance(delegate, dict) and _host_local(delegate.get("ipam")):
        return ("delegate", "ipam")
    return None


def host_local_config(plugin: dict[str, Any]) -> dict[str, Any] | None:
    """The IPAM config host-local gets from ``plugin`` as far as its config says (``{}`` for flannel without an
    ``ipam``), or None (:func:`host_local_ipam`)."""
    keys = host_local_ipam(plugin)
    if keys is None:
        return None
    node: Any = plugin
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def data_dir(plugin: dict[str, Any]) -> str | None:
    """The ``dataDir`` the plugin's config gives host-local; None when it gives none (host-local's default) or
    when no host-local reads its config."""
    ipam = host_local_config(plugin)
    value = ipam.get("dataDir") if ipam is not None else None
    return value if isinstance(value, str) and value else None


def with_data_dir(plugin: dict[str, Any], folder: str, instead_of: str | None = None) -> dict[str, Any]:
    """``plugin`` whose host-local IPAM gets ``folder`` as its ``dataDir`` when it names none (a ``dataDir`` the
    conflist sets is its author's choice, kept); ``plugin`` itself when nothing changes. ``instead_of``: a folder
    whose ``dataDir`` (it or one below it) is replaced by ``folder``, and no other (none given is kept)."""
    keys = host_local_ipam(plugin)
    ipam = host_local_config(plugin)
    if keys is None or ipam is None:
        return plugin
    if instead_of is not None:
        given = ipam.get("dataDir")
        if not (isinstance(given, str) and (given == instead_of or given.startswith(instead_of.rstrip("/") + "/"))):
            return plugin
    elif "dataDir" in ipam:
        return plugin
    given = {**ipam, "dataDir": folder}
    if keys == ("ipam",):
        return {**plugin, "ipam": given}
    return {**plugin, "delegate": {**plugin["delegate"], "ipam": given}}
