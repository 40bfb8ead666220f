"""A CNI plugin that wraps another, which root tests write into their bin folder."""

# A wrapper CNI plugin a test writes into its bin folder (format it with ``bin``, the plugins' folder): it runs the
# plugin under its ``delegate`` key with the runtime's ``runtimeConfig``. Named ``flannel`` it does to its delegate
# what Flannel's CNI plugin does (flannel-io/cni-plugin): ``type`` bridge when it names none, a bridge's
# ``isGateway`` true unless it sets it, and an ``ipam`` built from its own (``type`` host-local when it names none,
# an absent one empty: ``getDelegateIPAM``); any other name hands its ``delegate`` on whole, ``ipam`` too.
DELEGATING_PLUGIN = """#!/usr/bin/python3
import json, os, subprocess, sys
conf = json.load(sys.stdin)
if os.environ["CNI_COMMAND"] == "VERSION":
    print(json.dumps({{"cniVersion": conf["cniVersion"], "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}}))
    sys.exit(0)
sub = dict(conf.get("delegate") or {{}}, cniVersion=conf["cniVersion"], name=conf["name"])
if conf["type"] == "flannel":
    sub.setdefault("type", "bridge")
    if sub["type"] == "bridge":
        sub.setdefault("isGateway", True)
    sub["ipam"] = dict(conf.get("ipam") or {{}})
    sub["ipam"].setdefault("type", "host-local")
if "runtimeConfig" in conf:
    sub["runtimeConfig"] = conf["runtimeConfig"]
proc = subprocess.run([{bin!r} + "/" + sub["type"]], input=json.dumps(sub).encode(), capture_output=True)
sys.stdout.buffer.write(proc.stdout)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
"""
