"""CLI habits from kubectl and containerlab, without root (issue 13): -o yaml wherever -o json,
completion, plain tables when piped, colour only on a terminal, the new commands' help.

With a running lab (get, exec without a command, status/probe -t FILE,
inspect --section, NETLAB_LAB) they are in tests/integration/test_cli_habits_live.py.
"""

from __future__ import annotations

import io
import re
import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from cli_inprocess import run_cli
from netlab.cli import cli
from netlab.cli.base import COMMANDS
from netlab.cli.style import highlight, table


def test_yaml_is_the_same_data_as_json():
    as_json = json.loads(run_cli("validate", "-o", "json").stdout)
    as_yaml = yaml.safe_load(run_cli("validate", "-o", "yaml").stdout)
    assert as_yaml == as_json and as_json["valid"] is True
    plan_json = json.loads(run_cli("plan", "-o", "json").stdout)
    assert yaml.safe_load(run_cli("plan", "-o", "yaml").stdout) == plan_json


def test_every_command_with_json_output_offers_yaml():
    runner = CliRunner()
    offered = []
    for name in COMMANDS:
        out = runner.invoke(cli, [name, "--help"]).output
        if "json" in out and "-o, --output" in out:
            offered.append(name)
            assert "yaml" in out.split("-o, --output", 1)[1].split("\n  -", 1)[0], name
    assert {"validate", "plan", "up", "down", "status", "list", "get", "probe", "trace", "capture", "inspect",
            "doctor"} <= set(offered)


def test_invalid_yaml_output_of_a_bad_topology_is_data_too(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes: []\n")
    res = run_cli("validate", "-t", str(bad), "-o", "yaml")
    data = yaml.safe_load(res.stdout)
    assert res.returncode == 2 and data["valid"] is False and data["problems"][0]["field"] == "nodes"


def test_validate_counts_and_names_the_cluster_dns_it_adds(tmp_path):
    one = tmp_path / "one.yaml"
    one.write_text("name: one\nnodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: a}}]\n"
                   "services: [{name: s, selector: {app: a}, ports: [{port: 80}]}]\n")
    res = run_cli("validate", "-t", str(one))
    assert res.returncode == 0
    assert "1 node, 2 pods (1 + kube-dns, the cluster DNS netlab adds to a lab with Services), " \
           "2 services (1 + kube-system/kube-dns)" in res.stdout, res.stdout
    data = json.loads(run_cli("validate", "-t", str(one), "-o", "json").stdout)
    assert data["added"] == {"pods": ["kube-dns"], "services": ["kube-system/kube-dns"]}


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _netlab_completion netlab"),
                                          ("zsh", "#compdef netlab"), ("fish", "complete --no-files --command netlab")])
def test_completion_prints_the_shells_script(shell, marker):
    res = run_cli("completion", shell)
    assert res.returncode == 0 and marker in res.stdout and "_NETLAB_COMPLETE" in res.stdout, res.stdout


def _complete(words: str, env: dict | None = None) -> list[str]:
    """What bash completion offers for the command line ``words`` (the last word is being completed)."""
    parts = words.split(" ")
    env = {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1), "_NETLAB_COMPLETE": "bash_complete",
           **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "netlab"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, **env})
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line.startswith("plain,")]


def test_completion_offers_commands_kinds_and_formats():
    assert "completion" in _complete("netlab comp")
    assert _complete("netlab get s") == ["service", "services", "svc"]
    assert _complete("netlab get pods -o ") == ["text", "wide", "json", "yaml"]


def test_completion_reads_lab_names_from_namespaces_without_the_state(tmp_path, monkeypatch):
    """As a user (the state is root's), lab, pod and node names come from /run/netns's listing."""
    from netlab.cli import complete

    netns = tmp_path / "netns"
    netns.mkdir()
    for name in ("ab-underlay", "ab-n1", "ab-web-1", "cd-underlay", "cd-x", "unrelated"):
        (netns / name).touch()
    monkeypatch.setattr(complete, "NETNS_DIR", str(netns))
    monkeypatch.setattr("netlab.realize.lab_list.known_labs", lambda: (_ for _ in ()).throw(PermissionError()))
    assert complete.lab_names() == ["ab", "cd"]
    ctx = type("Ctx", (), {"params": {"lab_name": "ab"}})()
    assert complete.lab_members(ctx)[0] == ["n1", "web-1"]
    items = complete.complete_names(ctx, None, "w")
    assert [i.value for i in items] == ["web-1"]
    # get's NAMES: the kind's, but those already given; impair's NAME:IFACE as capture's (they completed nothing)
    ctx.params.update(kind="pods", names=("web-1",))
    assert [i.value for i in complete.complete_kind_names(ctx, None, "")] == ["n1"]
    assert [i.value for i in complete.complete_interfaces(ctx, None, "web-1:")] == ["web-1:eth0", "web-1:lo"]
    from click.shell_completion import ShellComplete

    def offered(args: list[str], incomplete: str) -> list[str]:
        return [i.value for i in ShellComplete(cli, {}, "netlab", "_NETLAB_COMPLETE").get_completions(args, incomplete)]

    assert offered(["get", "pods", "--lab", "ab", "n1"], "") == ["web-1"]
    assert offered(["impair", "--lab", "ab"], "n1:") == ["n1:eth0"]


def test_tables_are_plain_columns_when_piped():
    out = table(["lab", "pods"], [["demo", 4], ["other-lab", None]], stream=io.StringIO())
    assert out == "LAB         PODS\ndemo        4\nother-lab\n"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    text = "fedora-1 -> X!       fedora-3\nFAIL vxlan\nlab x: 3 objects, all as planned"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert highlight(text, io.StringIO()) == text  # piped: plain
    coloured = highlight(text, Tty())
    assert "\x1b[31m\x1b[1mX!\x1b[0m" in coloured and "\x1b[31m\x1b[1mFAIL\x1b[0m" in coloured
    assert "\x1b[32mall as planned\x1b[0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert highlight(text, Tty()) == text


def test_no_color_keeps_a_terminals_box_table_without_colour(monkeypatch):
    """NO_COLOR asks for no colour, nothing else (no-color.org): `netlab list` on a terminal stays a box table, as the
    README says (it printed plain columns, QA q27 2); TERM=dumb gets plain columns."""
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "1")
    out = table(["lab", "pods"], [["demo", 4]], stream=Tty())
    assert "\u2503" in out or "\u2502" in out, out  # a box's vertical line
    assert "\x1b[" not in out, out
    monkeypatch.setenv("TERM", "dumb")
    assert table(["lab", "pods"], [["demo", 4]], stream=Tty()) == "LAB    PODS\ndemo   4\n"


def test_the_quiz_helps_example_answers_what_its_seed_breaks():
    """`quiz --help`'s example runs `quiz --seed 7` then answers: seed 7 breaks pod-cidr-route-missing on the demo
    lab (the README says so), so the help's answer is that one (it said vxlan-arp-missing: "wrong", exit 1; QA q27 1)."""
    text = CliRunner().invoke(cli, ["quiz", "--help"]).output
    assert "quiz --seed 7" in text and "quiz answer pod-cidr-route-missing" in text, text


def test_exec_get_and_inspect_help_say_what_they_do():
    runner = CliRunner()
    assert "without COMMAND, a shell" in runner.invoke(cli, ["exec", "--help"]).output
    out = runner.invoke(cli, ["get", "--help"]).output
    assert "pods|nodes|services" in out and "-l, --selector" in out and "wide" in out
    out = " ".join(runner.invoke(cli, ["inspect", "--help"]).output.split())
    assert ("(links, addrs, routes, neigh, fdb, bridge, sockets, iptables, nftables, conntrack, files: a node's "
            "Flannel files, a pod's /etc/resolv.conf and /etc/hosts)") in out
    assert "--section conntrack" in out and "table ip kube-proxy" in out and "-s nftables" in out


def test_inspect_refuses_an_unknown_section_before_anything_else():
    res = run_cli("inspect", "minikube", "--section", "routes,bogus")
    assert res.returncode == 2 and "bogus: want some of links, addrs" in res.stderr
    # Given empty (a shell variable left unset): not "every section", which is -s left out.
    for given in ([""], [" , "], ["", "-s", ","]):
        res = run_cli("inspect", "minikube", "-s", *given)
        assert res.returncode == 2 and "it names nothing: want some of links, addrs" in res.stderr, res.stderr


def test_probe_protocols_are_repeatable_or_comma_separated_and_complete_after_the_comma():
    res = run_cli("probe", "--lab", "x", "--proto", "icmp,bogus")
    assert res.returncode == 2 and "bogus: want some of icmp, tcp, udp" in res.stderr
    res = run_cli("probe", "--lab", "x", "--proto", "")
    assert res.returncode == 2 and "it names nothing: want some of icmp, tcp, udp" in res.stderr
    assert _complete("netlab probe --proto icmp,") == ["icmp,tcp", "icmp,udp"]  # what is chosen is not offered
    assert _complete("netlab probe --proto icmp,udp,") == ["icmp,udp,tcp"]
    assert _complete("netlab inspect x --section routes,ne") == ["routes,neigh"]
    from netlab.cli.options import comma_separated

    split = comma_separated(("icmp", "tcp", "udp"))
    assert split(None, None, ("udp,icmp", "tcp", "icmp")) == ("udp", "icmp", "tcp")  # in order, once each
    assert split(None, None, ()) == ()


def test_up_counts_its_actions_by_what_they_were():
    """A fresh up starts containers and writes files; it repairs nothing (it used to say 'repaired')."""
    from netlab.cli.lab import fixed_words

    fresh = ["wrote /etc/netns/a-web/resolv.conf", "started container web/http", "started container dns/dnsmasq"]
    assert fixed_words(fresh) == ["2 containers started", "1 file written"]
    repair = ["set up of link eth0 in a-web", "restarted container web/http (it was stopped)",
              "rewrote /etc/netns/a-web/resolv.conf (edited)"]
    assert fixed_words(repair) == ["1 container restarted", "1 file written", "1 object added, changed or repaired"]
    # kube-dns restarted as the Services changed, a new pod's container started: not "2 containers started"
    both = ["restarted container kube-dns/dnsmasq (its command changed)", "started container p6/main"]
    assert fixed_words(both) == ["1 container started", "1 container restarted"]
    assert fixed_words([]) == []
    # A label change rewrites each node's rule table (its policy chains): said as that, not as an object repaired
    # (QA polfix: "1 object added, changed or repaired" after a pod's and a namespace's labels changed)
    labels = ["restore iptables filter in l-n1", "restore iptables-legacy filter in l-n2",
              "restore nftables table ip kube-proxy in l-n1"]
    assert fixed_words(labels) == ["3 rule tables rewritten"]
    assert fixed_words(labels[:1] + ["add route 10.244.1.0/24 in l-n1"]) == [
        "1 rule table rewritten", "1 object added, changed or repaired"]
    # A policy edit: the node's filter table restored, and the stale chains that restore deleted, one table; the
    # lab's rules taken out of the other backend, a table of their own (QA polfix2: said as an object)
    policy = ["restore iptables filter in l-n1", "l-n1: deleted stale filter chains NETPOL-AAAA, NETPOL-BBBB"]
    assert fixed_words(policy) == ["1 rule table rewritten"]
    moved = ["restore iptables-nft filter in l-n1",
             "take the lab's filter rules and chains NETPOL-AAAA out of iptables-legacy in l-n1 (the lab is in "
             "iptables-nft)", "l-n2: deleted stale nat chains KUBE-SVC-X"]
    assert fixed_words(moved) == ["3 rule tables rewritten"]


def test_format_data_writes_the_format_asked_for():
    """What print_json prints and what `trace -o json|yaml -w FILE` writes: one formatter, the asked format
    (the command itself sees "json" for -o yaml)."""
    import click
    from click.testing import CliRunner

    from netlab.cli.output import format_data, output_option

    @click.command()
    @output_option("text", "json")
    def cmd(output: str) -> None:
        click.echo(f"{output}|{format_data({'a': [1, '10.0.0.1']})}", nl=False)

    assert CliRunner().invoke(cmd, ["-o", "json"]).output == 'json|{\n  "a": [\n    1,\n    "10.0.0.1"\n  ]\n}\n'
    assert CliRunner().invoke(cmd, ["-o", "yaml"]).output == "json|a:\n- 1\n- 10.0.0.1\n"


def test_print_json_prints_what_format_data_gives_through_the_file_descriptor(capfd):
    """print_json writes big JSON as it encodes it, through a buffer of its own on stdout's descriptor."""
    from netlab.cli.output import format_data, print_json

    data = {"a": [1, "10.0.0.1"], "b": {"c": None, "d": 1.5}, "e": ("x",)}
    print_json(data)
    assert capfd.readouterr().out == format_data(data) == json.dumps(data, indent=2) + "\n"


def test_exec_takes_its_options_between_name_and_the_command(monkeypatch):
    """``netlab exec web-1 --lab L -- hostname`` (kubectl takes its options anywhere before ``--``): --lab came to
    the command, which failed as "--lab: command not found"."""
    from netlab.cli.workload import exec_

    def parsed(*args: str) -> tuple:
        p = exec_.make_context("exec", list(args)).params
        return p["lab_name"], p["topology"], p["container"], p["name"], p["command"]

    monkeypatch.delenv("NETLAB_LAB", raising=False)
    assert parsed("web", "--lab", "a", "--", "hostname") == ("a", None, None, "web", ("--", "hostname"))
    assert parsed("web", "--lab=b", "--topology", "t.yaml", "--", "id")[:2] == ("b", "t.yaml")
    assert parsed("web", "hostname", "-s") == (None, None, None, "web", ("hostname", "-s"))  # no --: as given
    # $NETLAB_LAB is --lab's default only: -t after NAME picks the lab (it was "give --lab or -t, not both")
    monkeypatch.setenv("NETLAB_LAB", "env")
    assert parsed("web", "-t", "t.yaml", "--", "id")[:2] == (None, "t.yaml")
    assert parsed("web", "--lab", "x", "--", "id")[:2] == ("x", None)
    assert parsed("web", "--", "id")[:2] == ("env", None)


KUBECTL_EXEC = [
    # QA q51 3: -it before the pod took -t as the topology file ("web: no such file; check the path"), -i as
    # the pod ("lab ... has no pod, node or host '-i'"), and -c as the command ("-c: command not found", 127)
    (["-it", "web", "--", "sh"], ["web", "--", "sh"]),
    (["-ti", "web", "--", "sh"], ["web", "--", "sh"]),
    (["-i", "-t", "web", "--", "sh"], ["web", "--", "sh"]),
    (["-i", "web", "--", "hostname"], ["web", "--", "hostname"]),
    (["--lab", "L", "-it", "srv", "--", "sh"], ["--lab", "L", "srv", "--", "sh"]),
    (["--stdin", "--tty", "web", "--", "sh"], ["web", "--", "sh"]),
    (["-t", "web", "--", "sh"], ["web", "--", "sh"]),  # no NAME after it: kubectl's -t, web the pod
    (["-t", "web"], ["web"]),
    (["--lab", "L", "-t", "web", "-c", "app", "--", "sh"], ["--lab", "L", "-c", "app", "web", "--", "sh"]),
    (["web", "-it", "--", "sh"], ["web", "--", "sh"]),  # kubectl takes them after the pod too
    (["web", "-t", "--", "sh"], ["web", "--", "sh"]),
    (["web", "-c", "udp", "--", "ps"], ["-c", "udp", "web", "--", "ps"]),
    (["web", "-c", "echo"], ["-c", "echo", "web"]),  # a shell with that container's environment
    (["web", "--container=echo", "-it", "--", "env"], ["-c", "echo", "web", "--", "env"]),
    (["-capp", "web", "--", "env"], ["-c", "app", "web", "--", "env"]),
    (["web", "-t", "sh"], ["web", "sh"]),  # kubectl's old `exec POD -t CMD`
    # netlab's own forms stay as they were
    (["-t", "lab.yaml", "web", "--", "sh"], ["-t", "lab.yaml", "web", "--", "sh"]),
    (["web", "-t", "lab.yaml", "--", "sh"], ["-t", "lab.yaml", "web", "--", "sh"]),
    (["-tlab.yaml", "web"], ["-t", "lab.yaml", "web"]),
    (["web", "--", "sh", "-c", "echo -it"], ["web", "--", "sh", "-c", "echo -it"]),
    (["web", "sh", "-c", "echo -i"], ["web", "sh", "-c", "echo -i"]),
    (["web"], ["web"]),
    (["--help"], ["--help"]),
]


@pytest.mark.parametrize("typed, netlabs", KUBECTL_EXEC)
def test_exec_reads_kubectls_words(typed, netlabs):
    from netlab.cli.exec_args import kubectl_forms

    assert kubectl_forms(typed) == netlabs


@pytest.mark.parametrize("typed, said", [
    (["-n", "shop", "web", "--", "sh"], "-n: netlab exec takes no namespace: pod names are unique"),
    (["web", "-q", "--", "sh"], "-q: netlab exec has no such option; it takes --lab NAME, -t FILE, -c CONTAINER"),
    (["web", "-x"], "-x: netlab exec has no such option"),  # it ran `-x`: "command not found", 127
    (["--stdin=false", "web", "--", "sh"], "always gives the command your standard input"),
    (["web", "-c", "--", "sh"], "-c needs a value"),
    (["--lab"], "--lab needs a value"),
])
def test_exec_refuses_what_it_does_not_take_in_one_line_naming_it(typed, said):
    from netlab.cli.exec_args import kubectl_forms
    from netlab.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(said)) as err:
        kubectl_forms(typed)
    assert "\n" not in str(err.value) and "netlab exec [--lab L] [-c CONTAINER] NAME -- COMMAND" in str(err.value)


def test_exec_t_before_a_file_with_no_pod_after_it_says_so(tmp_path, monkeypatch):
    """-t FILE with no NAME after it, FILE a file here: netlab's -t, the pod left out; said, never guessed."""
    from netlab.cli.exec_args import kubectl_forms
    from netlab.errors import UsageError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab.yaml").write_text("name: x\n")
    with pytest.raises(UsageError, match=r"-t lab.yaml: netlab's -t is the topology file .* no pod NAME follows"):
        kubectl_forms(["-t", "lab.yaml", "--", "sh"])


def test_cni_log_completes_the_pods_its_log_holds_a_removed_one_too(tmp_path, monkeypatch):
    """`netlab cni log <TAB>`: the lab's pods, and a pod taken out of the topology whose calls the log keeps."""
    import json as _json

    from netlab.cli import complete

    netns = tmp_path / "netns"
    netns.mkdir()
    for name in ("ab-underlay", "ab-n1", "ab-web-1"):
        (netns / name).touch()
    monkeypatch.setattr(complete, "NETNS_DIR", str(netns))
    monkeypatch.setattr("netlab.realize.lab_list.known_labs", lambda: (_ for _ in ()).throw(PermissionError()))
    ctx = type("Ctx", (), {"params": {"lab_name": "ab"}})()
    assert [i.value for i in complete.complete_logged_pods(ctx, None, "")] == ["n1", "web-1"]  # no log here
    log = tmp_path / "calls.jsonl"
    log.write_text("".join(_json.dumps(c) + "\n" for c in ({"pod": "web-1"}, {"pod": "web-0"}, {"pod": "-"})))
    monkeypatch.setattr("netlab.cni.lifecycle.log_path", lambda lab: str(log))
    assert [i.value for i in complete.complete_logged_pods(ctx, None, "")] == ["n1", "web-1", "web-0"]
    assert [i.value for i in complete.complete_logged_pods(ctx, None, "web-0")] == ["web-0"]


def test_cni_explains_the_calls_as_a_runtime_makes_them():
    """What `netlab cni` teaches is what libcni and containerd do, and what netlab adds (IP=): DEL gets the cached
    result from 0.4.0 only (it said always), and containerd's K8S_POD_UID, which a lab has not, is named."""
    res = run_cli("cni")
    text = " ".join(res.stdout.split())
    assert res.returncode == 0 and "K8S_POD_UID=<pod's uid>" in text and "IP=<the pod's planned address>" in text
    assert "DEL runs them in reverse, from cniVersion 0.4.0 with that result as prevResult" in text


def test_every_command_that_takes_lab_takes_a_topology_file_too(tmp_path, monkeypatch):
    """The README: "Commands that act on a running lab take `--lab NAME` or `-t FILE`". impair took only --lab
    (`impair -t FILE ...` was click's "No such option '-t'", exit 2)."""
    def commands(group, prefix=""):
        for name in group.list_commands(None):
            command = group.get_command(None, name)
            yield from commands(command, f"{prefix}{name} ") if hasattr(command, "list_commands") else \
                [(prefix + name, command)]
    for name, command in commands(cli):
        params = {p.name for p in command.params}
        assert "lab_name" not in params or "topology" in params, name
    # impair -t FILE acts on the lab the file names, as the others do
    topo = tmp_path / "t.yaml"
    topo.write_text("name: qx5t\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n")
    chosen = []
    monkeypatch.setattr("netlab.cli.impair.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.impair.impair", lambda lab, *a, **k: chosen.append(lab) or 1 / 0)
    run_cli("impair", "-t", str(topo), "a:eth0", "--rate", "1mbit")
    assert chosen == ["qx5t"]


def _help(*words: str) -> str:
    return " ".join(CliRunner().invoke(cli, [*words, "--help"]).output.split())  # its words, however wrapped


def test_list_help_says_each_phase_its_exit_codes_and_examples():
    """`list --help` was two lines (QA docs58 5): now the phases a lab can be listed in, the exit codes, and
    examples."""
    out = _help("list")
    for phase in ("corrupt", "lost", "gone", "elsewhere", "interrupted", "creating", "deleting"):
        assert phase in out, phase
    assert "Exit 0, also when no lab is up" in out and "Examples: sudo netlab list" in out


@pytest.mark.parametrize("words", [["down"], ["logs"], ["validate"], ["plan"], ["status"], ["probe"], ["doctor"],
                                   ["cni", "log"]])
def test_each_commands_help_has_examples_and_down_and_logs_their_exit_codes(words):
    out = _help(*words)
    assert f"Examples: {'sudo ' if words[0] not in ('validate', 'plan') else ''}netlab {' '.join(words)}" in out, out
    if words[0] in ("down", "logs"):
        assert "Exit 0" in out and "; 3 when" in out


def test_output_option_points_at_the_json_reference_and_the_top_help_at_netlab_state_dir():
    """-o said "Output format." alone; the top-level help did not say NETLAB_STATE_DIR, nor that sudo drops it."""
    for name in ("status", "list", "get", "probe", "doctor", "trace"):
        assert "Output format; json and yaml: one document, its keys in docs/json.md." in _help(name), name
    top = _help()
    assert "NETLAB_STATE_DIR" in top and "sudo drops the environment" in top
    assert "`sudo NETLAB_STATE_DIR=/tmp/st netlab up`" in top
