"""What an application developer meets in a pod (QA q51 3, 4, 5): `netlab exec` read as kubectl's (-it, -c), the
Service variables a container starts with, and why a container could not start in `get pods -o json`.

Checked against the kernel: the container's own /proc/PID/environ, and real traffic to the address and port its
variables give (the echo server answers with the pod's name)."""

from __future__ import annotations

import json

from helpers import netlab, state_path

WEB_IP, DB_IP = "10.96.0.20", "10.96.0.21"
PROBE = ("import os, socket; s = socket.create_connection((os.environ['WEB_PORT_80_TCP_ADDR'], "
         "int(os.environ['WEB_SERVICE_PORT_HTTP'])), 5); s.sendall(b'hi'); print(s.recv(400).decode())")


WEB = """  - name: web
    node: n1
    labels: {app: web}
    containers:
      - {name: echo, ports: [{containerPort: 8080}]}
      - {name: app, command: [sleep, "600"]}
"""


def topology(lab: str) -> str:
    return f"""name: {lab}
nodes:
  - name: n1
pods:
{WEB}  - name: nostart
    node: n1
    containers:
      - {{name: main, command: [/nonexistent/x]}}
  - name: never
    node: n1
    restartPolicy: Never
    containers:
      - {{name: main, command: [/nonexistent/y]}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: {WEB_IP}
    ports: [{{name: http, port: 80, targetPort: 8080}}, {{name: dns-udp, port: 53, protocol: UDP}}]
  - {{name: db, namespace: shop, selector: {{app: db}}, clusterIP: {DB_IP}, ports: [{{port: 5432}}]}}
  - {{name: peers, clusterIP: None, selector: {{app: web}}, ports: [{{port: 8080}}]}}
"""


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        return dict(e.decode().partition("=")[::2] for e in fh.read().split(b"\0") if e)


def test_exec_env_and_start_errors_as_in_kubernetes(labs):
    lab = labs.name("ex")
    _, up = labs.up(topology(lab), check=False)
    assert up.returncode == 1 and "container main: could not start: /nonexistent/x" in up.stderr, up.stderr
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}

    # 5: the Service variables, in the container's own environment as the kernel keeps it
    app = next(c for c in pods["web"]["containers"] if c["name"] == "app")
    env = environ(app["pid"])
    assert {k: env.get(k) for k in ("WEB_SERVICE_HOST", "WEB_SERVICE_PORT", "WEB_SERVICE_PORT_HTTP",
                                     "WEB_SERVICE_PORT_DNS_UDP", "WEB_PORT", "WEB_PORT_80_TCP",
                                     "WEB_PORT_80_TCP_PROTO", "WEB_PORT_80_TCP_PORT", "WEB_PORT_80_TCP_ADDR",
                                     "WEB_PORT_53_UDP", "WEB_PORT_53_UDP_PROTO")} == {
        "WEB_SERVICE_HOST": WEB_IP, "WEB_SERVICE_PORT": "80", "WEB_SERVICE_PORT_HTTP": "80",
        "WEB_SERVICE_PORT_DNS_UDP": "53", "WEB_PORT": f"tcp://{WEB_IP}:80", "WEB_PORT_80_TCP": f"tcp://{WEB_IP}:80",
        "WEB_PORT_80_TCP_PROTO": "tcp", "WEB_PORT_80_TCP_PORT": "80", "WEB_PORT_80_TCP_ADDR": WEB_IP,
        "WEB_PORT_53_UDP": f"udp://{WEB_IP}:53", "WEB_PORT_53_UDP_PROTO": "udp"}, env
    # another namespace's Service, a headless one, and the API server's (the lab has none) give nothing
    assert not [k for k in env if k.startswith(("DB_", "PEERS_", "KUBERNETES_"))], env
    assert (env["POD_NAME"], env["NODE_NAME"], env["POD_IP"]) == ("web", "n1", pods["web"]["ip"])

    # 3: kubectl's words; -c gives the command that container's environment, whose address answers
    said = netlab("exec", "--lab", lab, "-it", "web", "-c", "app", "--", "python3", "-c", PROBE)
    assert json.loads(said.stdout.strip().splitlines()[-1])["pod"] == "web", said.stdout  # through the ClusterIP
    for form in (["-it", "web"], ["-i", "web"], ["-t", "web"], ["web", "-it"], ["web", "-c", "echo"]):
        out = netlab("exec", "--lab", lab, *form, "--", "hostname", check=False)
        assert (out.returncode, out.stdout, out.stderr) == (0, "web\n", ""), (form, out)
    assert netlab("exec", "--lab", lab, "-i", "web", "--", "cat", input="in\n").stdout == "in\n"
    theirs = netlab("exec", "--lab", lab, "web", "-c", "app", "--", "env").stdout.splitlines()
    assert f"WEB_SERVICE_HOST={WEB_IP}" in theirs and "NETLAB_CONTAINER=app" in theirs, theirs
    assert not [v for v in theirs if v.startswith("NETLAB_CONTAINER_ID=")], theirs  # the container's run's own
    mine = netlab("exec", "--lab", lab, "web", "--", "sh", "-c", "echo ${WEB_SERVICE_HOST:-none}").stdout
    assert mine == "none\n"  # without -c: your own environment, as before
    for form, line in ((["web", "-c", "nosuch"], "-c nosuch: pod web has no such container (it has: echo, app)"),
                       (["n1", "-c", "app"], "-c app: n1 is not a pod"),
                       (["-n", "shop", "web"], "-n: netlab exec takes no namespace")):
        out = netlab("exec", "--lab", lab, *form, "--", "true", check=False)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and line in out.stderr, (form, out)

    # 4: why a container could not start, as the kubelet says it
    nostart, never = pods["nostart"], pods["never"]
    main = nostart["containers"][0]
    assert (main["state"], main["waiting_reason"], nostart["status"]) == ("failed", "RunContainerError",
                                                                           "RunContainerError"), nostart
    assert "/nonexistent/x" in main["waiting_message"] and main["start_error"] == main["waiting_message"], main
    main = never["containers"][0]
    assert (main["state"], main["waiting_reason"], never["status"]) == ("failed", None, "StartError"), never
    assert "/nonexistent/y: command not found" in main["start_error"], main
    log = netlab("logs", "--lab", lab, "never").stdout
    assert main["start_error"] in log, log  # the same words as its log's


def started_with(lab: str) -> str:
    return f"""name: {lab}
nodes:
  - name: n1
pods:
{WEB}services:
  - {{name: web, selector: {{app: web}}, clusterIP: {WEB_IP}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


LATE = "  - {name: late, selector: {app: web}, clusterIP: 10.96.0.30, ports: [{port: 81, targetPort: 8080}]}\n"
FRESH = "  - {name: fresh, node: n1, containers: [{name: app, command: [sleep, '600']}]}\n"


def exec_env(lab: str, pod: str, container: str) -> dict[str, str]:
    out = netlab("exec", "--lab", lab, pod, "-c", container, "--", "env").stdout
    return dict(line.partition("=")[::2] for line in out.splitlines())


def app_pid(lab: str, pod: str) -> int:
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    return next(c for c in pods[pod]["containers"] if c["name"] == "app")["pid"]


def test_exec_c_has_the_environment_the_container_started_with(labs):
    """A Service added after a container started is not in its environment, nor in `exec -c`'s, until it starts
    again (kubectl exec runs with the container's spec as the runtime made it); a new pod's has it at once."""
    import os
    import select
    import signal

    lab = labs.name("ee")
    path, _ = labs.up(started_with(lab))
    pid = app_pid(lab, "web")
    text = started_with(lab).replace("pods:\n", "pods:\n" + FRESH, 1) + LATE
    _, up = labs.up(text)
    assert "container web/" not in up.stdout and app_pid(lab, "web") == pid, up.stdout  # not restarted
    assert environ(pid)["WEB_SERVICE_HOST"] == WEB_IP and "LATE_SERVICE_HOST" not in environ(pid)  # the kernel's
    for container in ("app", "echo"):
        env = exec_env(lab, "web", container)
        assert env["WEB_SERVICE_HOST"] == WEB_IP and env["NETLAB_CONTAINER"] == container, env
        assert not [k for k in env if k.startswith("LATE_")], (container, env)
    fresh = exec_env(lab, "fresh", "app")  # a pod made after the Service: its container has its variables
    assert fresh["LATE_SERVICE_HOST"] == "10.96.0.30" and environ(app_pid(lab, "fresh"))["LATE_SERVICE_PORT"] == "81"

    # the container exits: nothing to exec into (kubectl exec's "container not running"), until `up` restarts it
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        select.select([fd], [], [], 30)  # readable once it has exited
    finally:
        os.close(fd)
    out = netlab("exec", "--lab", lab, "web", "-c", "app", "--", "env", check=False)
    assert (out.returncode, out.stdout, out.stderr.count("\n")) == (3, "", 1), out
    assert "container app of pod web is not running (it has exited)" in out.stderr, out.stderr
    netlab("up", "-t", path)
    env = exec_env(lab, "web", "app")
    assert env["LATE_SERVICE_HOST"] == "10.96.0.30" and env["LATE_PORT"] == "tcp://10.96.0.30:81", env
    assert "LATE_SERVICE_HOST" not in exec_env(lab, "web", "echo")  # its echo server thread ran on
    # The lab's state keeps each set of variables once (workload/service_envs.py): web/app, started again, and
    # fresh's container, started after late was made, name one; web/echo the one it started with.
    with open(state_path(lab, "state.json"), "rb") as fh:
        raw = fh.read()
    pods = json.loads(raw)["extra"]["workload"]["pods"]
    web, fresh = ({c: r["service_env"] for c, r in pods[pod]["containers"].items()} for pod in ("web", "fresh"))
    assert web["app"] == fresh["app"] != web["echo"], (web, fresh)
    assert (raw.count(b'"LATE_SERVICE_HOST"'), raw.count(b'"WEB_SERVICE_HOST"')) == (1, 2)
