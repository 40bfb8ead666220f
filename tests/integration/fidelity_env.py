"""The container environment rows of the fidelity table (test_fidelity.py): the Service variables `netlab exec -c`
gives a command in a container that started before a Service was made, and in one of a pod made after it, beside
what `kubectl exec -c` gives in Kubernetes (tests/integration/test_exec_kubectl_env.py checks more)."""

from __future__ import annotations

from helpers import lab_up, netlab, unique_lab, write_topology

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
{fresh}  - {{name: web, node: n1, labels: {{app: web}}, containers: [{{name: app, command: [sleep, "600"]}}]}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80}}]}}
{late}"""
FRESH = "  - {name: fresh, node: n1, containers: [{name: app, command: [sleep, '600']}]}\n"
LATE = "  - {name: late, selector: {app: web}, clusterIP: 10.96.0.30, ports: [{port: 81}]}\n"
# The kubelet gives a container the variables of the Services that exist when it makes the container
# (pkg/kubelet/envvars; Kubernetes' Services docs: a Service must be made before its client pods come into
# existence, else they do not get its variables), and the runtime runs `kubectl exec`'s command with the
# container's process spec as it made it (CRI Exec: containerd takes the OCI spec's env), never remade.
SOURCE = ("the kubelet's Service variables of the Services there when it makes the container (pkg/kubelet/envvars; "
          "Kubernetes' Services docs: a Service made after its client pods gives them no variables), and CRI Exec, "
          "whose command the runtime runs with the env of the container's OCI spec as it was made")


def env_lab(tmp_path_factory):
    """A lab whose pod web started before Service late was made (an `up` of the file with it: web runs on), and
    whose pod fresh was made after it."""
    lab = unique_lab("fe")
    folder = tmp_path_factory.mktemp("fidelity-env")
    path = write_topology(folder, TOPOLOGY.format(lab=lab, fresh="", late=""))
    with lab_up(path, lab):
        write_topology(folder, TOPOLOGY.format(lab=lab, fresh=FRESH, late=LATE))
        netlab("up", "-t", path)
        yield lab


def env_rows(lab: str) -> list[dict]:
    """`env` through `netlab exec -c app` in each pod: its Service addresses."""
    out = []
    for pod, when, real in (("web", "started before Service late was made", "WEB_SERVICE_HOST=10.96.0.20\n"),
                            ("fresh", "made after Service late", "LATE_SERVICE_HOST=10.96.0.30\n"
                                                                  "WEB_SERVICE_HOST=10.96.0.20\n")):
        said = netlab("exec", "--lab", lab, pod, "-c", "app", "--", "env").stdout
        mine = "".join(sorted(line + "\n" for line in said.splitlines() if "_SERVICE_HOST=" in line))
        out.append({"object": f"container environment, a pod {when}",
                    "command": f"env (kubectl exec {pod} -c app): the _SERVICE_HOST lines, sorted",
                    "netlab": mine, "real": real, "source": SOURCE, "known": None})
    return out
