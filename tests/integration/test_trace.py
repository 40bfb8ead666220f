"""trace, capture and inspect on real labs (root): the issue's acceptance, checked with real packets.

Every lab is small and uniquely named. The tests that only read a lab (trace, capture, inspect, a server
of their own that goes with them) share one per module and xdist worker (``web``: two nodes, a pod on each,
a Service); the tests that break a lab have their own (the `labs` fixture takes it down). Every packet stays
inside the lab's namespaces; every wait is bounded.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from helpers import as_planned_here, in_netns, ip, ip_json, lab_up, links_settled, netlab, two_node_topology, \
    unique_lab, wait_for, write_topology
from netlab import Lab
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root

SERVICE = "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"


def web_topology(lab: str) -> str:
    text = two_node_topology(lab, pods_per_node=1)
    text = text.replace("ip: 10.244.0.2}", "ip: 10.244.0.2, labels: {app: web}}")
    text = text.replace("ip: 10.244.1.3}", "ip: 10.244.1.3, labels: {app: web}}")
    return text + SERVICE


@pytest.fixture(scope="module")
def shared_web(tmp_path_factory):
    """One web_topology lab for this module's read-only tests (on each xdist worker that runs one of them)."""
    lab = unique_lab("tr")
    path = write_topology(tmp_path_factory.mktemp("web"), web_topology(lab), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # in this process: no test of the module asks anything of up's or down's CLI
        yield lab
        assert as_planned_here(lab), f"a test that shares lab {lab} changed it (they only read it)"


@pytest.fixture
def web(shared_web, request):
    """The shared lab, dumped if the test fails."""
    watch(request.node, Lab(shared_web))
    return shared_web


def trace_json(lab: str, *args: str, check: bool = True) -> dict:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def find(hops: list[dict], netns: str, device: str, kind: str) -> dict:
    for h in hops:
        if (h["netns"], h["device"], h["kind"]) == (netns, device, kind):
            return h
    raise AssertionError(f"no {kind} row on {netns} {device}: " + "\n".join(
        f"{h['netns']} {h['device']} {h['kind']}" for h in hops))


def test_trace_pod_to_pod_across_the_vxlan_overlay(web):
    lab = web
    d = trace_json(lab, "fedora-1", "fedora-2")
    assert d["delivered"] and d["reply_received"] and d["lost"] is None
    hops = d["hops"]
    n1, n2 = f"{lab}-minikube", f"{lab}-minikube-m02"
    # The tutorial's path, in order: fedora-1 eth0 -> veth -> cni0 on minikube -> route via
    # flannel.1 onlink -> ARP entry -> FDB entry dst 192.168.122.7 -> UDP 8472 VNI 1 on the
    # underlay -> flannel.1 on minikube-m02 -> cni0 -> fedora-2 eth0.
    order = [find(hops, f"{lab}-fedora-1", "eth0", "route"),
             next(h for h in hops if h["netns"] == n1 and h["kind"] == "arrive" and h["device"].startswith("veth")),
             find(hops, n1, "cni0", "bridge"),
             find(hops, n1, "flannel.1", "route"),
             find(hops, n1, "flannel.1", "neigh"),
             find(hops, n1, "flannel.1", "fdb"),
             find(hops, n1, "eth0", "encap"),
             next(h for h in hops if h["netns"] == f"{lab}-underlay"),
             find(hops, n2, "eth0", "decap"),
             find(hops, n2, "flannel.1", "arrive"),
             find(hops, n2, "cni0", "route"),
             find(hops, f"{lab}-fedora-2", "eth0", "deliver")]
    assert [h["index"] for h in order] == sorted(h["index"] for h in order)
    route = order[3]
    assert "via 10.244.1.0 dev flannel.1" in route["decision"] and route["facts"]["matched"].endswith("onlink")
    assert order[4]["facts"]["state"] == "PERMANENT" and order[4]["facts"]["ip"] == "10.244.1.0"
    assert order[5]["facts"]["remote_vtep"] == "192.168.122.7"
    enc = order[6]
    assert enc["facts"]["vni"] == 1 and enc["facts"]["outer_dport"] == 8472
    assert enc["facts"]["outer_dst"] == "192.168.122.7" and enc["facts"]["outer_sport"] > 0
    assert order[-1]["facts"]["ttl"] == 62  # two routers: minikube and minikube-m02
    # Every row that can be observed was seen, on the way there and back.
    observable = [h for h in hops + d["reply_hops"] if h.get("observe") is not None]
    assert observable and all(h["seen"] is True for h in observable), [
        (h["index"], h["netns"], h["device"], h["kind"]) for h in observable if not h["seen"]]
    # The commands are real: the one for the route row answers the same.
    cmd = route["commands"][0].split()
    assert cmd[:3] == ["ip", "-n", n1]
    out = ip(*cmd[3:], netns=n1).stdout
    assert "via 10.244.1.0 dev flannel.1" in out

    text = netlab("trace", "--lab", lab, "fedora-1", "fedora-2").stdout
    assert "result: delivered to fedora-2 (TTL 62 on arrival); reply received" in text
    assert f"$ bridge -n {n1} fdb show dev flannel.1" in text and "NOT SEEN" not in text


def test_trace_names_the_hop_where_a_deleted_arp_entry_stops_the_packet(labs):
    lab = labs.name("tr")
    path = labs.up_here(two_node_topology(lab, pods_per_node=1))
    n1 = f"{lab}-minikube"
    ip("neigh", "del", "10.244.1.0", "dev", "flannel.1", netns=n1)
    proc = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    d = json.loads(proc.stdout)
    assert not d["delivered"]
    lost = d["lost"]
    assert (lost["netns"], lost["device"]) == (n1, "flannel.1")
    assert lost["reason"].startswith("no ARP entry for 10.244.1.0 on flannel.1")
    assert "nolearning" in lost["reason"] and "neigh replace 10.244.1.0" in lost["fix"]
    seen = {(h["netns"], h["device"]): h["seen"] for h in d["hops"] if h.get("observe") is not None}
    assert seen[(n1, "cni0")] is True and seen[(n1, "flannel.1")] is False
    # the kernel asked on flannel.1; nobody can answer (the list also holds the ARP a first trace's packet made
    # on its way, answered: fedora-1's for its gateway)
    assert [a["answered"] for a in d["arp"] if (a["netns"], a["ifname"]) == (n1, "flannel.1")] == [False], d["arp"]

    text = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", check=False, timeout=60).stdout
    assert "result: LOST at hop" in text and f"({n1} flannel.1): no ARP entry for 10.244.1.0" in text
    # `up` repairs the lab; the trace goes through again.
    Lab.up(path)  # as `netlab up -t PATH` does
    assert trace_json(lab, "fedora-1", "fedora-2")["delivered"]


def test_trace_to_a_service_names_the_endpoint_dnat_and_reverse_translation(web):
    lab = web
    cip = None
    picked = set()
    for _ in range(3):
        d = trace_json(lab, "fedora-1", "svc/web", "--proto", "tcp", "--port", "80")
        cip = d["dst"]["ip"]
        assert d["delivered"] and d["reply_received"], d["reply"]
        ep = d["endpoint"]
        assert ep["service"] == "default/web" and ep["endpoint"] in ("fedora-1", "fedora-2")
        assert ep["endpoint_port"] == 8080 and ep["sep_chain"].startswith("KUBE-SEP-")
        picked.add(ep["endpoint"])
        dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
        assert dnat["netns"] == f"{lab}-minikube"
        assert f"DNAT {cip}:80 → {ep['endpoint_ip']}:8080" in dnat["decision"]
        # The conntrack entry the kernel made is the evidence: its reply comes from the endpoint.
        assert f"reply {ep['endpoint_ip']}:8080" in dnat["facts"]["conntrack"]
        undo = [h for h in d["reply_hops"] if h["kind"] == "snat" and "un-DNAT" in h["decision"]]
        assert undo and undo[0]["netns"] == f"{lab}-minikube"
        assert f"→ {cip}:80" in undo[0]["decision"]
        arrival = d["reply_hops"][-1]
        assert arrival["kind"] == "deliver" and arrival["netns"] == f"{lab}-fedora-1" and arrival["seen"]
        assert arrival["observe"]["flow"].startswith(f"{cip}:80 → 10.244.0.2:")
        # Its source port lies above the pod's ephemeral range (the kernel's own range in the pod): a later
        # probe's kernel-chosen port towards the endpoint never shares this DNATed flow's reply tuple, which
        # would make conntrack rewrite that probe's port (a spurious "source port translated").
        sport = int(arrival["observe"]["flow"].rsplit(":", 1)[1].split()[0])
        low, high = map(int, in_netns(f"{lab}-fedora-1", "cat", "/proc/sys/net/ipv4/ip_local_port_range",
                                      check=True).stdout.split())
        assert sport > high and sport <= 65535, (sport, low, high)
    text = netlab("trace", "--lab", lab, "fedora-1", "svc/web").stdout  # tcp/80: the Service's own port
    assert "Service default/web: the DNAT picked endpoint fedora-" in text
    assert "conntrack reverse translation (un-DNAT)" in text


def test_pcap_opens_in_tshark_with_inner_and_outer_headers(web, tmp_path):
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    lab = web
    pcap = str(tmp_path / "trace.pcapng")
    proc = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--pcap", pcap)
    assert f"tshark -r {pcap} -d udp.port==8472,vxlan" in proc.stdout
    out = subprocess.run(["tshark", "-r", pcap, "-d", "udp.port==8472,vxlan", "-T", "fields", "-e",
                          "frame.interface_name", "-e", "ip.src", "-e", "ip.dst", "-e", "udp.dstport", "-e",
                          "vxlan.vni", "-e", "icmp.type"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    encapsulated = [r for r in rows if r[4] == "1"]
    assert encapsulated, out.stdout
    iface, srcs, dsts, dport = encapsulated[0][:4]
    assert srcs == "192.168.122.215,10.244.0.2" and dsts == "192.168.122.7,10.244.1.3" and dport == "8472"
    assert iface == f"{lab}-minikube/eth0"
    ifaces = {r[0] for r in rows}
    assert {f"{lab}-fedora-1/eth0", f"{lab}-fedora-2/eth0", f"{lab}-minikube-m02/flannel.1"} <= ifaces
    assert {"0", "8"} <= {r[5].split(",")[-1] for r in rows}  # the request and the reply
    verbose = subprocess.run(["tshark", "-r", pcap, "-d", "udp.port==8472,vxlan", "-V", "-Y", "vxlan"],
                             capture_output=True, text=True, timeout=60).stdout
    assert "Virtual eXtensible Local Area Network" in verbose


def test_inspect_json_has_links_addresses_routes_neighbours_fdb(web):
    lab = web
    node = json.loads(netlab("inspect", "--lab", lab, "minikube", "-o", "json").stdout)
    assert {"links", "addresses", "routes", "neighbours", "fdb", "bridge_ports", "iptables", "conntrack"} <= set(node)
    links = {link["name"]: link for link in node["links"]}
    assert links["flannel.1"]["vxlan"] == {"vni": 1, "port": 8472, "local": "192.168.122.215", "dev": "eth0",
                                           "learning": False}
    assert links["eth0"]["peer"]["netns"] == f"{lab}-underlay"
    assert {"dev": "cni0", "address": "10.244.0.1/24", "network": "10.244.0.0/24"} in node["addresses"]
    assert any(r["text"] == "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink" for r in node["routes"])
    assert any(n["dst"] == "10.244.1.0" and n["state"] == "PERMANENT" for n in node["neighbours"])
    assert any(f["dev"] == "flannel.1" and f["dst"] == "192.168.122.7" for f in node["fdb"])
    assert any(p["bridge"] == "cni0" and p["hairpin"] for p in node["bridge_ports"])
    nat = node["iptables"]["nat"]
    assert any(' -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in line
               and line.startswith("[") for line in nat)
    assert any(line.startswith(":KUBE-SVC-") for line in nat)
    assert all("DOCKER" not in line for line in nat)

    pod = json.loads(netlab("inspect", "--lab", lab, "fedora-1", "-o", "json").stdout)
    eth0 = next(link for link in pod["links"] if link["name"] == "eth0")
    assert eth0["peer"]["netns"] == f"{lab}-minikube" and eth0["addresses"] == ["10.244.0.2/24"]
    assert any(r["text"].startswith("default via 10.244.0.1 dev eth0") for r in pod["routes"])
    # What listens there, as the kernel's own `ss` lists it: the echo server's TCP and UDP 8080 in the pod, the
    # VXLAN device's UDP 8472 in the node.
    for name, netns, view in (("fedora-1", f"{lab}-fedora-1", pod), ("minikube", f"{lab}-minikube", node)):
        ss = in_netns(netns, "ss", "-Htuln", check=True).stdout.split("\n")
        kernel_view = sorted((line.split()[0], line.split()[1], line.split()[4]) for line in ss if line.strip())
        ours = sorted((s["proto"], s["state"], s["text"]) for s in view["sockets"])
        assert ours == kernel_view and ours, name
    assert ("tcp", "LISTEN", "0.0.0.0:8080") in [(s["proto"], s["state"], s["text"]) for s in pod["sockets"]]
    text = netlab("inspect", "--lab", lab, "minikube").stdout
    for heading in ("links", "addresses", "routes", "neighbours", "fdb", "bridge ports", "sockets", "iptables",
                    "conntrack"):
        assert f"\n{heading}" in "\n" + text, heading
    assert f"$ bridge -n {lab}-minikube fdb show" in text
    # inspect's link states with a pod's eth0 down: test_a_pod_whose_eth0_is_down_is_told_so (its own lab)


def test_capture_prints_vxlan_decoded_frames_and_writes_pcaps(web, tmp_path):
    lab = web
    # Traffic first, then the captures join it; it goes on until they are done, however slow the machine is
    # (a 6 s pinger ended before the third capture started on a loaded machine), and 60 s at most.
    pinger = subprocess.Popen(["ip", "netns", "exec", f"{lab}-fedora-1", "ping", "-q", "-i", "0.2",
                               "-w", "60", "10.244.1.3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The underlay's bridge (br0, no address) sends its unsolicited IGMP membership reports just after it
        # comes up, and they cross minikube's eth0: VXLAN's port alone keeps them out of the two frames.
        out = netlab("capture", "--lab", lab, "minikube:eth0", "-c", "2", "--timeout", "5", "udp port 8472",
                     timeout=60).stdout
        pcap = str(tmp_path / "c.pcap")
        netlab("capture", "--lab", lab, "minikube-m02:flannel.1", "-c", "2", "--timeout", "5", "-w", pcap, timeout=60)
        # The shared lab's neighbour entries may be due for their unicast ARP probe: ICMP alone, for the ping's.
        js = json.loads(netlab("capture", "--lab", lab, "fedora-2:eth0", "-c", "2", "--timeout", "5", "-o", "json",
                               "icmp", timeout=60).stdout)
        # A disk that cannot take the pcap (/dev/full: ENOSPC on every write): one line naming the file.
        full = [netlab("capture", "--lab", lab, "fedora-2:eth0", "-c", "1", "--timeout", "5", "-w", "/dev/full",
                       check=False, timeout=60),
                netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--pcap", "/dev/full", check=False, timeout=60)]
    finally:
        pinger.terminate()
        pinger.wait(timeout=15)
    for proc in full:
        assert proc.returncode == 3 and proc.stderr.splitlines()[-1] == \
            "netlab: cannot write /dev/full: No space left on device (it is cut short)", proc.stderr
        assert "Traceback" not in proc.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert all(": VXLAN, flags [I] (0x08), vni 1 | inner " in line for line in lines), out
    # outer's TTL, then inner's; ports as numbers, ICMP as tcpdump words it
    assert all(re.search(r"IP \(ttl 64\) \S+\.\d+ > \S+\.8472: VXLAN.* \| inner .* IP \(ttl 63\) .*: ICMP echo", line)
               for line in lines), out
    assert any("10.244.0.2 > 10.244.1.3: ICMP echo request, id " in line for line in lines)
    if shutil.which("tshark"):
        read = subprocess.run(["tshark", "-r", pcap], capture_output=True, text=True, timeout=60)
        assert read.stdout.count("ICMP") == 2
    assert len(js["frames"]) == 2 and js["interface"] == "eth0"
    assert all("ICMP echo" in f["summary"] and f["dns"] is None for f in js["frames"])


def test_a_port_nothing_serves_refuses_the_packet_and_the_trace_says_refused(web):
    """Delivered to the pod, refused there: an ICMP port unreachable (UDP) or a reset (TCP) came back. The trace
    says REFUSED with what is bound on that port, as the kernel's own `ss` lists it, and exits 1 (it said
    "delivered", exit 0, before)."""
    lab = web
    ns = f"{lab}-fedora-2"
    bound = in_netns(ns, "ss", "-Htuln", check=True).stdout
    assert ":9999 " not in bound and ":8080 " in bound, bound  # the echo server's port alone
    proc = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--proto", "udp", "--port", "9999", "-o", "json",
                  check=False, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    d = json.loads(proc.stdout)
    assert d["delivered"] and not d["reply_received"] and d["lost"] is None
    assert d["refused"].startswith(f"no socket is bound to udp port 9999 in {ns}; its kernel answered with an "
                                   "ICMP port unreachable"), d["refused"]
    # the port unreachable is the answer, and the reply rows saw it come back (test_trace_kernel_ways_live.py)
    assert d["reply_lost"] is None and all(h["seen"] for h in d["reply_hops"] if h["observe"]), d["reply_lost"]
    assert any(e["text"] == "destination unreachable: port unreachable" for e in d["icmp_errors"])
    proc = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--proto", "tcp", "--port", "9999", check=False,
                  timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"result: REFUSED by fedora-2 (TTL 62 on arrival): no socket listens on tcp port 9999 in {ns}; its " \
           "kernel answered with a TCP reset" in proc.stdout, proc.stdout
    # A server bound to the pod's loopback alone: the reason names it.
    server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c",
                               "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 9998)); s.listen(); "
                               "time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while ":9998 " not in in_netns(ns, "ss", "-Htln").stdout:
            assert time.monotonic() < deadline and server.poll() is None, "the loopback server did not listen"
            time.sleep(0.05)
        d = json.loads(netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--port", "9998", "-o", "json",
                              check=False, timeout=60).stdout)
        assert d["refused"].startswith(f"tcp port 9998 in {ns} is bound to 127.0.0.1:9998 only, not to "
                                       "10.244.1.3"), d["refused"]
    finally:
        server.kill()
        server.wait(timeout=10)
    # A datagram to a node's VXLAN port: its device's socket takes it (ss lists 8472 there) and drops what is no
    # VXLAN packet, in silence. The marked datagram was taken for a VXLAN packet by the capture, and the trace
    # said LOST at hop 1, "look at the firewall".
    node = f"{lab}-minikube-m02"
    assert ":8472 " in in_netns(node, "ss", "-Hlun", check=True).stdout
    d = trace_json(lab, "fedora-1", "minikube-m02", "--proto", "udp", "--port", "8472")
    assert d["delivered"] and d["lost"] is None and d["refused"] is None and not d["reply_received"], d["lost"]
    assert d["reply_lost"]["reason"] == ("minikube-m02 sent no reply (UDP 8472 there is the VXLAN device flannel.1's "
                                         "port: it takes only VXLAN packets, and dropped this datagram)"), d["reply_lost"]
    # Without --port: the pod's echo server, which answers UDP on its TCP port too (it said "no UDP port").
    d = trace_json(lab, "fedora-1", "fedora-2", "--proto", "udp")
    assert d["dst"]["port"] == 8080 and d["delivered"] and d["reply_received"], d
    assert '"pod": "fedora-2"' in d["reply"]  # the echo server's answer


def test_trace_refuses_unknown_names_and_outside_addresses(web):
    lab = web
    bad = netlab("trace", "--lab", lab, "fedora-1", "8.8.8.8", check=False)
    assert bad.returncode == 2 and "only traces packets inside the lab" in bad.stderr
    bad = netlab("trace", "--lab", lab, "nope", "fedora-2", check=False)
    assert bad.returncode == 2 and "no pod, node or internet host 'nope'" in bad.stderr
    bad = netlab("inspect", "--lab", lab, "nope", check=False)
    assert bad.returncode == 2
    bad = netlab("capture", "--lab", lab, "fedora-1:eth7", check=False)
    assert bad.returncode == 2 and "has no interface 'eth7'" in bad.stderr
    # A pod's neighbours: the trace does not leave stray permanent entries behind.
    assert "PERMANENT" not in in_netns(f"{lab}-fedora-1", "ip", "neigh").stdout


def test_a_pods_own_service_lost_to_a_port_without_hairpin_says_so(labs):
    """A pod's packet to its own Service, on a bridge port whose hairpin mode is off (a conflist's bridge without
    hairpinMode): DNATed on the bridge back to the port it came in by, dropped before conntrack kept the entry.
    trace said only "it was not DNATed here"; it names the port's hairpin mode, and its fix works."""
    lab = labs.name("tr")
    labs.up_here(f"""name: {lab}
nodes: [{{name: n1}}]
pods: [{{name: web, node: n1, labels: {{app: web}}}}]
services: [{{name: websvc, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}]
""")
    [eth0] = ip_json("link", "show", "eth0", netns=f"{lab}-web")  # its veth's peer: web's port on n1's cni0
    [port] = [link["ifname"] for link in ip_json("link", "show", "master", "cni0", netns=f"{lab}-n1")
              if link["ifindex"] == eth0["link_index"]]
    subprocess.run(["ip", "netns", "exec", f"{lab}-n1", "bridge", "link", "set", "dev", port, "hairpin", "off"],
                   check=True)
    trace = trace_json(lab, "web", "svc/websvc", "--proto", "tcp", "--port", "80", check=False)
    lost = trace["lost"]
    assert not trace["delivered"] and lost["netns"] == f"{lab}-n1", lost
    assert f"goes back out of the bridge port it came in by, {port}, which the bridge does only in hairpin mode" \
        in lost["reason"], lost
    assert lost["fix"] == f"bridge -n {lab}-n1 link set dev {port} hairpin on"
    subprocess.run(lost["fix"].split(), check=True)
    assert trace_json(lab, "web", "svc/websvc", "--proto", "tcp", "--port", "80")["delivered"]


def test_a_node_whose_eth0_mtu_was_lowered_loses_the_reply_not_the_request(labs):
    """A node's eth0 lowered to 1400: a pod's 1450-byte DF ping to the other node goes out in VXLAN packets the
    driver fragments (it sets no DF on the outer header) and arrives; the 1500-byte reply is dropped as it enters
    the lowered eth0 from the underlay. trace said the request was refused ("with DF set the kernel does not send
    it") and followed no reply's size."""
    lab = labs.name("tr")
    labs.up_here(two_node_topology(lab, pods_per_node=1))
    # First, a node's packets: from the address the kernel picks for the pod, flannel.1's or cni0's (the trace
    # said the node's underlay address, which the packet never carried).
    assert trace_json(lab, "minikube", "fedora-2")["src"]["ip"] == "10.244.0.0"
    assert trace_json(lab, "minikube", "fedora-1")["src"]["ip"] == "10.244.0.1"
    subprocess.run(["ip", "-n", f"{lab}-minikube", "link", "set", "eth0", "mtu", "1400"], check=True)
    trace = trace_json(lab, "fedora-1", "fedora-2", "--size", "1422", check=False)
    assert trace["delivered"] and trace.get("reply_lost"), trace
    lost = trace["reply_lost"]
    assert lost["netns"] == f"{lab}-underlay", lost
    assert f"but eth0 in {lab}-minikube takes at most 1400" in lost["reason"], lost
    assert "(IP, with its encapsulation)" in lost["reason"] and "pods' MTU + 50" in lost["reason"], lost
    # Both nodes lowered: the reply too leaves in fragments no bigger than 1400, which the other node takes (trace
    # followed the whole 1500 bytes past the fragmenting node and lost them there).
    subprocess.run(["ip", "-n", f"{lab}-minikube-m02", "link", "set", "eth0", "mtu", "1400"], check=True)
    both = trace_json(lab, "fedora-1", "fedora-2", "--size", "1422", check=False)
    assert both["delivered"] and not both.get("reply_lost"), both


def test_a_pod_whose_eth0_is_down_is_told_so(labs):
    """A pod's eth0 set down takes its routes with it: trace said only "Network is unreachable"; it names the
    link, and its fix brings it up (the same node's pods are reachable again)."""
    lab = labs.name("tr")
    labs.up_here(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n")
    subprocess.run(["ip", "-n", f"{lab}-a", "link", "set", "eth0", "down"], check=True)
    # A link's state is its operational one, as `ip -br link` shows it: a pod's port whose peer is down has no
    # carrier (DOWN, though set up), lo is UNKNOWN. inspect said UP for all of them (the admin flag).
    assert wait_for(lambda: links_settled(f"{lab}-n1"))  # the port's operstate follows on linkwatch's event
    node = json.loads(netlab("inspect", "--lab", lab, "n1", "-s", "links", "-o", "json").stdout)
    kernel = json.loads(subprocess.run(["ip", "-n", f"{lab}-n1", "-j", "link"], capture_output=True,
                                       text=True, check=True).stdout)
    assert {link["name"]: link["state"] for link in node["links"]} == {k["ifname"]: k["operstate"] for k in kernel}
    assert {"DOWN", "UNKNOWN", "UP"} <= {link["state"] for link in node["links"]}
    lost = trace_json(lab, "a", "b", check=False)["lost"]
    assert lost["reason"].endswith(": Network is unreachable: eth0 is down there, and a link set down loses its "
                                   "routes (bringing it up puts back only its connected ones)"), lost
    # The link up brings back only its connected route: the fix puts back the pod's routes that went with it.
    assert lost["fix"] == (f"ip -n {lab}-a link set eth0 up && ip -n {lab}-a route add 10.244.0.0/16 via 10.244.0.1 "
                           f"dev eth0 && ip -n {lab}-a route add default via 10.244.0.1 dev eth0"), lost
    subprocess.run(["sh", "-c", lost["fix"]], check=True)  # as a learner pastes it
    assert wait_for(lambda: links_settled(f"{lab}-n1"))  # the node's port forwards on linkwatch's carrier event
    assert trace_json(lab, "a", "b")["delivered"]
    assert trace_json(lab, "a", "n1")["delivered"]  # by the default route, which the link up alone left out
    assert as_planned_here(lab)
