"""`netlab up -t FILE --watch` follows the files its topology includes (QA polfix 1, 2, 3): with
``include: [pol/*.yaml]``, an edited policy file, a new file the glob matches and the glob's last file deleted
were ignored (nothing for 20 s; only `touch FILE` applied them). The watcher watches the included files and the
folders their globs look in, and applies them as it applies the topology file. The policies here have no spec,
or an empty one (the API server's zero spec: all ingress of the namespace denied), and the last file deleted
leaves the glob matching nothing, which removes its policies (a note, not a refusal)."""

from __future__ import annotations

import os
import time

import pytest

from helpers import in_netns, ip_json, unique_lab, write_topology
from watching import wait_until, watching

pytestmark = pytest.mark.root

PORT = 8080
HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: NAME, namespace: NS}\n"


def _topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}]
namespaces: [{{name: x}}]
pods:
  - name: web
    namespace: x
    node: n1
    containers: [{{name: web, ports: [{{containerPort: {PORT}, protocol: TCP}}]}}]
  - {{name: cli, node: n1}}
include: [pol/*.yaml]
"""


def _policy(name: str, namespace: str, spec: str = "") -> str:
    return HEAD.replace("NAME", name).replace("NS", namespace) + spec


def _connect(lab: str) -> str:
    """cli's TCP connection to web:8080, as a client sees it: ok, or refused (the REJECT's reset)."""
    web = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-web")[0]["addr_info"][0]["local"]
    code = ("import socket,sys\ns=socket.socket(); s.settimeout(3)\n"
            "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\nexcept OSError as e: print(type(e).__name__)\n")
    return in_netns(f"{lab}-cli", "python3", "-c", code, web, str(PORT), check=True).stdout.strip()


def _policy_rules(lab: str) -> list[str]:
    """n1's filter rules of the policies (their comments name them), as iptables-save prints them."""
    out = in_netns(f"{lab}-n1", "iptables-save", "-t", "filter", check=True).stdout
    return [line for line in out.splitlines() if line.startswith("-A NETPOL-") and "--comment" in line]


def test_an_edited_policy_file_a_new_one_and_the_last_one_deleted_are_applied(tmp_path):
    name = unique_lab("pfw")
    (tmp_path / "pol").mkdir()
    deny = tmp_path / "pol" / "deny.yaml"
    deny.write_text(_policy("deny-in", "x"))  # no spec: all ingress to x's pods denied
    path = write_topology(tmp_path, _topology(name))
    with watching(name) as start:
        watcher = start(path)
        assert _connect(name) == "refused"
        # Edited in place (truncated, then written): the policy now allows port 8080 from every namespace.
        mark = len(watcher.lines)
        deny.write_text(_policy("deny-in", "x", "spec:\n  ingress: [{from: [{namespaceSelector: {}}], "
                                               f"ports: [{{port: {PORT}}}]}}]\n"))
        line = watcher.wait_for_line(f"saw: {tmp_path}/pol/deny.yaml changed; did: ", after=mark, timeout=20)
        assert "not valid" not in line, line
        assert any("x/deny-in ingress rule 1" in r and f"--dport {PORT}" in r for r in _policy_rules(name))
        assert _connect(name) == "ok"
        # A new file the glob matches: cli's egress denied (an empty spec with policyTypes [Egress]).
        mark = len(watcher.lines)
        tmp = tmp_path / "pol" / ".out.tmp"
        tmp.write_text(_policy("deny-out", "default", "spec: {policyTypes: [Egress]}\n"))
        os.replace(tmp, tmp_path / "pol" / "out.yaml")  # an editor's atomic save
        line = watcher.wait_for_line(f"saw: {tmp_path}/pol/out.yaml added; did: ", after=mark, timeout=20)
        assert "not valid" not in line, line
        wait_until(lambda: _connect(name) == "refused", 10.0, step=0.2)
        # Every file deleted: the glob matches nothing, its policies are removed (a note, not a refusal).
        mark = len(watcher.lines)
        deny.unlink()
        (tmp_path / "pol" / "out.yaml").unlink()
        watcher.wait_for_line("pol/out.yaml removed", after=mark, timeout=20)
        wait_until(lambda: not _policy_rules(name), 10.0, step=0.2)
        said = watcher.lines[mark:]
        assert not any("not valid" in x or "apply failed" in x for x in said), "\n".join(said)
        assert _connect(name) == "ok"


def test_a_policy_file_written_in_two_parts_in_a_glob_folder_made_again_is_applied_whole_once(tmp_path):
    """The glob's folder deleted and made again (its inotify watch died with it): a policy file written there in two
    parts, 1.5 s apart, was applied at its first part (apiVersion, kind, metadata: a no-spec policy, all ingress of
    x denied), then whole a second later. The new folder is watched anew, and a change no event said done waits
    until the file stood still: one line, after the writer closed the file, and web stays reachable."""
    name = unique_lab("pfw")
    (tmp_path / "pol").mkdir()
    path = write_topology(tmp_path, _topology(name))
    allow = (f"spec:\n  podSelector: {{}}\n  ingress: [{{from: [{{namespaceSelector: {{}}}}], "
             f"ports: [{{port: {PORT}}}]}}]\n")
    with watching(name) as start:
        watcher = start(path)
        assert _connect(name) == "ok"
        mark = len(watcher.lines)
        (tmp_path / "pol").rmdir()
        (tmp_path / "pol").mkdir()
        with open(tmp_path / "pol" / "np.yaml", "w") as fh:
            fh.write(_policy("allow-web", "x"))
            fh.flush()
            time.sleep(1.5)  # the writer's pause between its parts (three looks of the stat at least)
            half_seen = [x for x in watcher.lines[mark:] if "np.yaml" in x]
            fh.write(allow)
        closed = len(watcher.lines)
        line = watcher.wait_for_line(f"saw: {tmp_path}/pol/np.yaml added; did: ", after=mark, timeout=20)
        assert not half_seen, "\n".join(watcher.lines[mark:])
        assert watcher.lines.index(line, mark) >= closed, "\n".join(watcher.lines[mark:])
        assert any("x/allow-web ingress rule 1" in r and f"--dport {PORT}" in r for r in _policy_rules(name))
        assert _connect(name) == "ok"
        said = [x for x in watcher.lines[mark:] if "np.yaml" in x]
        assert said == [line], "\n".join(watcher.lines[mark:])
