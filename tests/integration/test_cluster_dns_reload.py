"""The cluster DNS answers changed records without a restart, as CoreDNS does (root): a real small lab, `up` of
a changed file, questions from a pod through the DNS Service's ClusterIP (tests/dns_query.py).

CoreDNS's kubernetes plugin watches the API server: a new endpoint or a changed ClusterIP answers at once and
its pod's RESTARTS stays 0. The lab's dnsmasq re-reads its A and PTR records (a hosts file of the lab's state
directory) on SIGHUP, and `up` returns once it has (workload/dns_records.py). SRV records are only on dnsmasq's
command line (SIGHUP does not re-read --srv-host): a Service added or removed restarts it, and `get pods` counts
that restart as the kubelet counts one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dns_query import ask, reverse
from helpers import lab_up, netlab, unique_lab, write_topology
from netlab.kernel import processes as proc
from netlab.kernel import spawning
from netlab.realize.state_dir import STATE_ROOT
from netlab.realize.state_schema import check_state

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web-1, node: n1, ip: 10.244.0.2, labels: {{app: web}}}}
  - {{name: client, node: n1, ip: 10.244.0.3}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{name: http, port: 80, targetPort: 8080}}]}}
"""
# a pod that becomes an endpoint of web, and web at another ClusterIP: A and PTR records only
MORE = TOPOLOGY.replace("  - {{name: client,", "  - {{name: web-2, node: n1, ip: 10.244.0.5, labels: {{app: web}}}}\n"
                                               "  - {{name: client,").replace("10.96.0.20", "10.96.0.25")
# web removed, api added: their SRV records change too
OTHER = MORE.replace("{{name: web, selector", "{{name: api, selector").replace("10.96.0.25", "10.96.0.30")


def dnsmasq(lab: str) -> tuple[int, str]:
    """(pid, RESTARTS as `get pods` prints it) of the kube-dns pod's dnsmasq."""
    (pod,) = [p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]
              if p["name"] == "kube-dns"]
    (container,) = pod["containers"]
    rows = [line.split() for line in netlab("get", "pods", "--lab", lab).stdout.splitlines()]
    header = rows[0]
    (row,) = [r for r in rows[1:] if "kube-dns" in r]
    return container["pid"], row[header.index("RESTARTS")]


def answers(lab: str, *questions: str) -> list[tuple[str, list[str]]]:
    return [(a["status"], sorted(a["answer"])) for a in ask(f"{lab}-client", DNS, *questions)]


def test_a_new_endpoint_and_clusterip_answer_without_a_restart_and_a_new_service_with_a_counted_one(tmp_path):
    lab = unique_lab("dnr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        pid, restarts = dnsmasq(lab)
        assert restarts == "0"
        web = "web.default.svc.cluster.local"
        assert answers(lab, web) == [("NOERROR", [f"{web}. 30 IN A 10.96.0.20"])]

        write_topology(tmp_path, MORE.format(lab=lab))
        netlab("up", "-t", path)
        # right after up returns: the new records answer, the old ones are gone, from the same dnsmasq
        assert answers(lab, web, "10-244-0-5.web.default.svc.cluster.local", f"{reverse('10.244.0.5')} PTR",
                       f"{reverse('10.96.0.20')} PTR", f"_http._tcp.{web} SRV") == [
            ("NOERROR", [f"{web}. 30 IN A 10.96.0.25"]),
            ("NOERROR", [f"10-244-0-5.{web}. 30 IN A 10.244.0.5"]),
            ("NOERROR", [f"{reverse('10.244.0.5')}. 30 IN PTR 10-244-0-5.{web}."]),
            ("NXDOMAIN", []),
            ("NOERROR", [f"_http._tcp.{web}. 30 IN SRV 0 100 80 {web}."])]
        assert dnsmasq(lab) == (pid, "0")
        # The state up wrote passes the strict schema whole (the digest of the records dnsmasq read is a field of
        # it), as it is checked when it was not written by this very netlab: it was refused as corrupt.
        with open(os.path.join(STATE_ROOT, lab, "state.json"), "rb") as fh:
            check_state(fh.read(), lab)

        # a Service added and one removed: their SRV records are dnsmasq's command line, so it restarts, counted
        write_topology(tmp_path, OTHER.format(lab=lab))
        netlab("up", "-t", path)
        api = "api.default.svc.cluster.local"
        assert answers(lab, api, f"_http._tcp.{api} SRV", web, f"_http._tcp.{web} SRV") == [
            ("NOERROR", [f"{api}. 30 IN A 10.96.0.30"]),
            ("NOERROR", [f"_http._tcp.{api}. 30 IN SRV 0 100 80 {api}."]),
            ("NXDOMAIN", []), ("NXDOMAIN", [])]
        new_pid, restarts = dnsmasq(lab)
        assert new_pid != pid and restarts == "1"


def hup(lab: str, pid: int, word: str) -> None:
    """SIGHUP to the lab's dnsmasq, as a user sends it, and wait until its log says ``word`` of its records file."""
    log = os.path.join(STATE_ROOT, lab, "logs", "kube-dns.dnsmasq.log")
    offset = os.path.getsize(log)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while word not in open(log, encoding="utf-8").read()[offset:]:
        assert time.monotonic() < deadline, f"dnsmasq did not say {word!r} after SIGHUP"
        time.sleep(0.02)


def test_up_has_dnsmasq_read_its_records_again_after_they_were_lost_or_edited_and_read(tmp_path):
    """QA qd59 1: the records file removed (or a line edited) and dnsmasq made to read it (SIGHUP): it answers no
    name (a wrong one). `up` wrote the file again but sent no SIGHUP, as the digest it kept was of the file it had
    given dnsmasq, so the names stayed broken while `status` said all was as planned."""
    lab = unique_lab("dnr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        pid, _ = dnsmasq(lab)
        web = "web.default.svc.cluster.local"
        good = [("NOERROR", [f"{web}. 30 IN A 10.96.0.20"]),
                ("NOERROR", [f"{reverse('10.244.0.2')}. 30 IN PTR 10-244-0-2.{web}."])]
        hosts = os.path.join(STATE_ROOT, lab, "dns", "hosts")
        assert answers(lab, web, f"{reverse('10.244.0.2')} PTR") == good
        os.unlink(hosts)
        hup(lab, pid, f"failed to load names from {hosts}")
        assert answers(lab, web, f"{reverse('10.244.0.2')} PTR") == [("NOERROR", []), ("NXDOMAIN", [])]
        st = netlab("status", "--lab", lab, check=False)
        assert st.returncode == 1 and f"dns: the cluster DNS records {hosts} are missing (dnsmasq answers" in st.stdout
        up = netlab("up", "-t", path).stdout
        assert "container kube-dns/dnsmasq read the cluster DNS records again (SIGHUP; no restart)" in up, up
        assert answers(lab, web, f"{reverse('10.244.0.2')} PTR") == good
        # a line edited and read: the name answers the edited address until up
        with open(hosts, encoding="utf-8") as fh:
            text = fh.read()
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text.replace("10.96.0.20 web.", "10.96.0.99 web."))
        hup(lab, pid, f"read {hosts} - ")
        assert answers(lab, web)[0] == ("NOERROR", [f"{web}. 30 IN A 10.96.0.99"])
        up = netlab("up", "-t", path).stdout
        assert "container kube-dns/dnsmasq read the cluster DNS records again (SIGHUP; no restart)" in up, up
        assert answers(lab, web, f"{reverse('10.244.0.2')} PTR") == good
        assert dnsmasq(lab) == (pid, "0")
        assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_status_names_records_dnsmasq_read_while_edited_by_hand_and_up_has_it_read_them_again(tmp_path):
    """QA lf61 1: a line of the records file edited, dnsmasq made to read it (SIGHUP), the file put back: the file
    was as planned, so status said all as planned and up changed nothing, while dnsmasq answered the edited
    address. An edit put back with no read between is nothing: dnsmasq holds what up had it read."""
    lab = unique_lab("dnr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        pid, _ = dnsmasq(lab)
        web = "web.default.svc.cluster.local"
        hosts = os.path.join(STATE_ROOT, lab, "dns", "hosts")
        with open(hosts, encoding="utf-8") as fh:
            text = fh.read()
        # edited and put back, never read meanwhile: no drift
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text.replace("10.96.0.20 web.", "10.96.0.99 web."))
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text)
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        # edited, read, put back: dnsmasq answers the edit
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text.replace("10.96.0.20 web.", "10.96.0.99 web."))
        hup(lab, pid, f"read {hosts} - ")
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text)
        assert answers(lab, web) == [("NOERROR", [f"{web}. 30 IN A 10.96.0.99"])]
        st = netlab("status", "--lab", lab, check=False)
        assert st.returncode == 1, st
        assert (f"dns: the cluster DNS records {hosts} were changed since dnsmasq read them at netlab's hand, and "
                "dnsmasq read it again since netlab had it read them (SIGHUP, 1 time): it answers what it read then"
                ) in st.stdout, st.stdout
        up = netlab("up", "-t", path).stdout
        assert "container kube-dns/dnsmasq read the cluster DNS records again (SIGHUP; no restart)" in up, up
        assert answers(lab, web) == [("NOERROR", [f"{web}. 30 IN A 10.96.0.20"])]
        assert dnsmasq(lab) == (pid, "0")
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        assert "nothing to change" in netlab("up", "-t", path).stdout


def test_up_counts_a_missing_records_file_it_writes_again(tmp_path):
    """QA qd59 6: status named the missing records file, and up wrote it but said "nothing to change" (JSON
    changed false); with a pod's resolv.conf missing too, "(1 file written)" of the two it wrote."""
    lab = unique_lab("dnr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        hosts = os.path.join(STATE_ROOT, lab, "dns", "hosts")
        os.unlink(hosts)
        up = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert up["changed"] is True and f"wrote the cluster DNS records {hosts} (10 A records)" in up["fixed"], up
        assert os.path.exists(hosts)
        resolv = f"/etc/netns/{lab}-client/resolv.conf"
        os.unlink(hosts)
        os.unlink(resolv)
        up = netlab("up", "-t", path).stdout
        assert "(2 files written, 1 object added, changed or repaired)" in up, up  # the SIGHUP: the object
        assert f"  wrote the cluster DNS records {hosts} (10 A records)\n" in up and f"  wrote {resolv}\n" in up, up
        assert netlab("status", "--lab", lab, check=False).returncode == 0


OLD = """import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
info = signal.sigwaitinfo([signal.SIGTERM])
with open(sys.argv[1], "w") as fh:
    fh.write(str(info.si_pid))
"""


def test_a_replacing_container_stops_the_old_process_itself_in_the_pod_right_before_its_exec(tmp_path):
    """The cluster DNS's dnsmasq restart (QA qd 2): the new container, in the pod's namespaces, sends the SIGTERM
    to the one it replaces, so port 53 is closed only for the old one's exit and the new one's exec and start."""
    lab = unique_lab("dnr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        said = tmp_path / "sender"
        old = subprocess.Popen([sys.executable, "-c", OLD, str(said)], stdout=subprocess.PIPE, text=True)
        try:
            assert old.stdout is not None and old.stdout.readline() == "ready\n"
            fd = os.pidfd_open(old.pid)
            try:
                new, pidfd = spawning.spawn(["sleep", "30"], netns=f"{lab}-client", uts_path=None,
                                            log_path=str(tmp_path / "log"), env={"PATH": os.environ["PATH"]},
                                            replace=fd)
            finally:
                os.close(fd)
            assert old.wait(timeout=10) == 0
            # the SIGTERM came from the new container's own process (before its exec), not from netlab
            assert said.read_text() == str(new.pid)
            assert proc.cmdline(new.pid) == ["sleep", "30"]
            assert proc.ns_identity(f"/proc/{new.pid}/ns/net") == proc.ns_identity(f"/run/netns/{lab}-client")
            os.kill(new.pid, signal.SIGKILL)
            if pidfd is not None:
                os.close(pidfd)
        finally:
            if old.poll() is None:
                old.kill()
                old.wait()


def _addon_records(node) -> list[dict]:
    """The container records in a state document that hold the records file's note (or its digest: KEY)."""
    if isinstance(node, dict):
        found = [node] if "records" in node and "log" in node else []
        return found + [r for v in node.values() for r in _addon_records(v)]
    if isinstance(node, list):
        return [r for v in node for r in _addon_records(v)]
    return []


def test_a_lab_whose_state_predates_the_read_note_gets_it_at_its_next_up(tmp_path):
    """QA 61 3: a lab whose state an older netlab wrote has no records_file/records_log in its dnsmasq's record,
    so read_since could never tell that dnsmasq read an edited file: status said all as planned for good. `up`
    notes the file now, after a SIGHUP that makes the note true, and status then sees the edit read."""
    lab = unique_lab("fbdn")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    with lab_up(path, lab):
        pid, _ = dnsmasq(lab)
        state_file = os.path.join(STATE_ROOT, lab, "state.json")
        with open(state_file, encoding="utf-8") as fh:
            doc = json.load(fh)
        (crec,) = _addon_records(doc)
        assert crec.get("records_file") and crec.get("records_log") is not None, crec
        del crec["records_file"], crec["records_log"]
        with open(state_file, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        up = netlab("up", "-t", path).stdout
        assert "container kube-dns/dnsmasq read the cluster DNS records again (SIGHUP; no restart)" in up, up
        with open(state_file, encoding="utf-8") as fh:
            (crec,) = _addon_records(json.load(fh))
        assert crec.get("records_file") and crec.get("records_log") is not None, crec
        assert dnsmasq(lab) == (pid, "0")
        hosts = os.path.join(STATE_ROOT, lab, "dns", "hosts")
        with open(hosts, encoding="utf-8") as fh:
            text = fh.read()
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text.replace("10.96.0.20 web.", "10.96.0.99 web."))
        hup(lab, pid, f"read {hosts} - ")
        with open(hosts, "w", encoding="utf-8") as fh:
            fh.write(text)
        st = netlab("status", "--lab", lab, check=False)
        assert st.returncode == 1 and "were changed since dnsmasq read them at netlab's hand" in st.stdout, st
        assert "nothing to change" not in netlab("up", "-t", path).stdout
        assert netlab("status", "--lab", lab, check=False).returncode == 0
