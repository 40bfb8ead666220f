"""``netlab probe``: check the lab's connectivity matrix and the three rules of the Kubernetes model."""

from __future__ import annotations

import click

from netlab.api.args import PROBE_TIMEOUT, PROTOS, items
from netlab.cli.base import attached, cli, collect_from_here, require_packets, require_root
from netlab.cli.options import Seconds, comma_separated, complete_comma_separated, lab_options
from netlab.cli.output import (check_output_file, force_option, note, output_option, print_json, said_first,
                               write_output_file)
from netlab.outkinds import JUNIT
from netlab.cli.style import highlight

# `probe` starts its agent on the lab's last job (netlab.probe.early) before it loads the models, the runner and
# the report, then loads them itself, with the cycle collector still off (cli.base.load_for, netlab/launch.py).
LOADS_ITSELF = True


@cli.command()
@lab_options
@output_option("text", "json")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write the results as JUnit XML to FILE (for CI systems); an existing FILE is replaced "
                   "only when it is empty or holds netlab probe's JUnit XML (else exit 2, or --force).")
@force_option("--junit's FILE")
@click.option("--timeout", type=Seconds(*PROBE_TIMEOUT), default=1.0, show_default=True,
              help="Seconds to wait for each reply.")
@click.option("--proto", "protos", multiple=True, callback=comma_separated(PROTOS),
              shell_complete=complete_comma_separated(PROTOS), metavar="PROTO[,PROTO]",
              help="Only these protocols (icmp, tcp, udp); repeatable or comma-separated. Default: all.")
@click.option("--arp", type=click.Choice(["auto", "real", "seeded"]), default="auto", show_default=True,
              help="Pods on one bridge: resolve every pair by ARP (real), or use the pods' own MACs as "
                   "temporary PERMANENT entries (seeded: no ARP floods, for big labs). auto seeds only "
                   "when ARP floods would dominate, their cost summed over the nodes' bridges: more than 125 pods "
                   "on one bridge, 100 on each of two or 79 on each of four.")
@click.option("--services/--no-services", default=True, show_default=True,
              help="Also probe the lab's Services (ClusterIP, NodePort, LoadBalancer, the spread over "
                   "endpoints) and egress to the internet hosts.")
@click.option("--mtu", is_flag=True,
              help="Also a full-size ICMP echo (DF set, as big as the pods' MTU: ping -M do -s MTU-28) between "
                   "every pair: an overlay that carries less than the pods send loses exactly these.")
def probe(lab_name: str | None, topology: str | None, output: str, junit_file: str | None, force: bool,
          timeout: float, protos: tuple[str, ...], arp: str, services: bool, mtu: bool) -> None:
    """Probe every pod from every pod and node; exit 1 if anything is not as expected.

    \b
    - ICMP echo between every ordered pair of pods, and from every node to every pod;
    - TCP to every port the pods' containers declare, UDP where netlab's echo
      server listens (it answers with the client address it saw; other UDP
      servers need not answer a probe, so their silence proves nothing);
    - the three rules: no NAT pod to pod and node to pod, and each pod carries
      the address others reach it at (with host-gw, a node's connection to
      another node's pod keeps its address but not its port: Flannel
      masquerades what leaves a node from outside the pod network);
    - Services: ClusterIP from every pod, NodePort on every node from every
      node and internet host, the LoadBalancer from every internet host (one
      outside its loadBalancerSourceRanges must be dropped), each
      externalIP from every pod, node and internet host, and
      egress from every pod to every internet host (a temporary echo listener
      answers there during the run); the client address each endpoint saw
      must show NAT exactly where kube-proxy and the gateway do it; for a
      Service with n >= 2 endpoints, 200 connections from one pod must give
      each endpoint at least half its fair share (all to one with ClientIP
      affinity).

    By default everything must reach everything (the Kubernetes model); the
    topology's `expect:` entries override pairs (e.g. `reach: false`). With
    -t FILE the lab is the one the file names, probed as the file says: its
    pods, Services and `expect:` entries (edit the expectations, probe again,
    no `up` needed); a note says when the lab runs other NetworkPolicies than
    the file's, as `policy table -t FILE` says it.
    Probes only go to the lab's own addresses, and every wait is bounded.
    The machine-wide neighbour (ARP) table stays bounded: the entries probing
    creates are deleted as it goes, and entries that were there before stay
    (but for unresolved ones, INCOMPLETE or FAILED: a resolution a fault left
    half done, just repaired, would fail the run's first packets); probe runs
    on one machine (other labs, other users, pytest-xdist workers) take turns,
    and one that waits over a second says whom it waits for.
    Every run probes new flows: the conntrack entries of the UDP flows it was
    answered on are deleted after it (NetworkPolicy judges new flows only, so a
    policy edit shows at the next run).

    \b
    Examples:
      sudo netlab probe
      sudo netlab probe --proto tcp,udp -o json      # probes[]: each flow
      sudo netlab probe --junit /tmp/probe.xml        # for a CI system
      sudo netlab probe -t topologies/services.yaml   # as that file expects
    """
    check_output_file(junit_file, "--junit", JUNIT, force)
    require_root()
    require_packets()
    from netlab.probe import early as early_agent

    protos = items("protos", protos or PROTOS, PROTOS)  # as internal_probe takes them
    # Who holds the lab and its state's version, before the early agent probes anything: another command's work
    # meanwhile (an up making the lab) is no verdict (as status, readahead.seen_first).
    from netlab.lab.readahead import seen_first

    before = seen_first(lab_name, topology)
    # The agent starts on the job the lab's last run made, while the models load (probe/early.py); the run
    # takes what it saw only if its own job is the same.
    early = None if topology is not None else early_agent.begin(lab_name, early_agent.options_key(
        protos + (("mtu",) if mtu else ()), timeout, arp, services, 0))
    try:
        from netlab.probe import report as render

        # A plain lab's run, judged without the models when all is as expected (probe/plain_report.py); else it goes
        # on with them (judging the early agent's answer, when that was read), loaded with the collector still off
        lab, report = None, None
        if early is not None and early.started and not mtu:
            from netlab.probe import plain_report

            lab = attached(lab_name, topology)
            report = plain_report.report(lab, early, protos, timeout, arp, services)
        if report is None:
            from netlab.api.lab import internal_probe
            from netlab.probe import runner  # noqa: F401 - internal_probe's, loaded here

            collect_from_here()

            lab = attached(lab_name, topology) if lab is None else lab
            report = internal_probe(lab, topology, timeout=timeout, protos=protos, arp=arp, services=services,
                                    mtu=mtu, early=early, said=note, first=said_first, before=before)
    finally:
        if early is not None:
            early.close()
    if junit_file:
        write_output_file(junit_file, render.junit(report), JUNIT)
    if output == "json":
        print_json(render.to_json(report))  # what Lab.probe() returns, field for field (test_api.py)
    else:
        click.echo(highlight(render.text(report)))
    if not report.ok:
        raise SystemExit(1)
