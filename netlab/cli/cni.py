"""``netlab cni``: how a runtime calls a CNI plugin, and every call a lab's runtime made."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from netlab.cli.base import attached, cli, require_root
from netlab.cli.options import lab_options
from netlab.cli.output import output_option, print_json
from netlab.cli.complete import complete_logged_pods

EXPLAIN = """\
How a container runtime calls a CNI plugin (what netlab does for network.cni: reference or a conflist)

  The kubelet asks the runtime (containerd) to run a pod sandbox: SetupPod -> addToNetwork.
  The runtime creates the pod's network namespace, then, for each plugin of the node's
  conflist (/etc/cni/net.d/*.conflist), in order, runs the plugin's executable, found by its
  "type" in CNI_PATH (/opt/cni/bin; Debian: /usr/lib/cni), in the host's network namespace
  (in a lab: the node's), with:

    environment   CNI_COMMAND=ADD | DEL | CHECK | VERSION
                  CNI_CONTAINERID=<sandbox id>      CNI_NETNS=/run/netns/<pod namespace>
                  CNI_IFNAME=eth0                   CNI_PATH=<where the plugins are>
                  CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=<pod>;
                           K8S_POD_INFRA_CONTAINER_ID=<sandbox id>;K8S_POD_UID=<pod's uid>
                  (in a lab: no K8S_POD_UID, there is no API object to take it from, and
                  IP=<the pod's planned address>, which host-local and bash-bridge take;
                  a network whose IPAM is static gets IP=<address>/<the node's podCIDR
                  prefix>, as static parses IP= in CIDR notation only)
    stdin         the plugin's entry of the conflist, plus the list's "name" and "cniVersion",
                  "prevResult" (the previous plugin's result: chaining), and "runtimeConfig"
                  for the capabilities the plugin declares (ips, mac, portMappings: the
                  pod's hostPorts, ipRanges, bandwidth: its bandwidth annotations)
    stdout        ADD: a result {"cniVersion", "interfaces", "ips", "routes", "dns"};
                  an error: exit code != 0 and {"code", "msg", "details"}

  ADD runs the plugins in order and caches the last result; DEL runs them in reverse, from
  cniVersion 0.4.0 with that result as prevResult (and must succeed when things are already
  gone); CHECK (cniVersion >= 0.4.0) asks each plugin whether what it made is still there.
  A DEL or CHECK that exits 0 succeeded: what it printed is not read (libcni's way).
  The list's version is the highest of its cniVersion and CNI 1.1.0's cniVersions that
  netlab speaks. netlab never sends 1.1.0's STATUS or GC (libcni's GetStatusNetworkList and
  GCNetworkList): a plugin cannot be tried with them here.
  "A CNI conformant plugin could be realized via a BASH script": examples/cni/bash-bridge is one.

  Try it:
    netlab plan -t examples/cni/bash-bridge/topology.yaml   # ends with each pod's ADD: networks, plugins, CNI_*
    sudo netlab up -t examples/cni/bash-bridge/topology.yaml
    sudo netlab cni log web-1        # every call for web-1: environment, stdin, stdout, exit, duration
    sudo netlab inspect web-1        # ... and the pod's CNI result
"""


@cli.group(invoke_without_command=True)
@click.pass_context
def cni(ctx: click.Context) -> None:
    """How a runtime calls a CNI plugin (no lab needed); `netlab cni log` shows a lab's calls."""
    if ctx.invoked_subcommand is None:
        click.echo(EXPLAIN, nl=False)


@cni.command("log")
@lab_options
@click.argument("pod", required=False, shell_complete=complete_logged_pods)
@output_option("text", "json")
def log_cmd(lab_name: str | None, topology: str | None, pod: str | None, output: str) -> None:
    """Every CNI plugin call of a lab (or of one POD), in order: command, environment, stdin, stdout, exit, duration.

    POD may be a pod taken out of the topology since: the log keeps its ADD and DEL calls.
    `-o json`: {"lab", "pod", "calls": [...]}. A lab wired by netlab's builtin mode has none: exit 2.

    \b
    Examples:
      sudo netlab cni log --lab bashcni web-1    # examples/cni/bash-bridge/topology.yaml
      sudo netlab cni log -o json
    """
    require_root()
    from netlab.api.lab_pods import logged_calls

    lab = attached(lab_name, topology)
    calls = logged_calls(lab.name, lab.model, pod)
    if output == "json":
        print_json({"lab": lab.name, "pod": pod, "calls": calls})
        return
    if pod is not None and pod not in {p.name for p in lab.model.pods}:
        click.echo(f"netlab: note: pod {pod} is no longer in lab {lab.name}; these are the calls its log holds",
                   err=True)
    if not calls:
        click.echo("netlab: no CNI calls recorded", err=True)
        return
    for i, c in enumerate(calls, 1):
        click.echo(render_call(i, c))


def render_call(i: int, c: dict[str, Any]) -> str:
    from netlab.cni.invoke import NO_RESULT, TIMEOUT_VAR, exit_words

    when = time.strftime("%H:%M:%S", time.localtime(c.get("started", 0)))
    code = exit_words(c["exit_code"] if isinstance(c.get("exit_code"), int) else None)
    if isinstance(c.get("killed_after_s"), (int, float)):
        code += f", killed by netlab at its deadline, {c['killed_after_s']:g} s ({TIMEOUT_VAR})"
    out = [f"#{i} {when} pod {c.get('pod')}: {c.get('plugin')} {c.get('command')} (network {c.get('network')}, "
           f"run in {c.get('runs_in')}): {code}, {1000 * float(c.get('duration') or 0):.0f} ms"]
    env = c.get("env") or {}
    out += [f"  env    {k}={v}" for k, v in sorted(env.items()) if k.startswith("CNI_")]
    out.append("  stdin  " + json.dumps(c.get("stdin"), sort_keys=True))
    if (c.get("stdout") or "").strip():
        # A DEL or CHECK that exits 0 succeeded whatever it printed: libcni reads none of it, nor does netlab.
        unread = " (not read: a DEL or CHECK that exits 0 succeeds)" if c.get("command") in NO_RESULT \
            and c.get("exit_code") == 0 and c.get("killed_after_s") is None else ""
        out.append("  stdout " + " ".join(c["stdout"].split()) + unread)
    if (c.get("stderr") or "").strip():
        out.append("  stderr " + " ".join(c["stderr"].split()))
    return "\n".join(out) + "\n"
