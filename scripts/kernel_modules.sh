#!/usr/bin/env bash
# The kernel modules a lab uses, loaded by scripts/setup.sh (loading a module changes no network namespace).
#   sudo ./scripts/kernel_modules.sh
# veth, bridge, vxlan: the kernel loads these itself when a lab first makes one; loaded here all the same.
# br_netfilter: nothing loads it on its own (CONFIG_BRIDGE_NETFILTER=m on Debian's and Ubuntu's kernels), and a
# lab whose pods share a node bridge sets net.bridge.bridge-nf-call-iptables=1, which only it provides: loaded
# as Kubernetes' install guide does (modprobe br_netfilter). It also makes the frames of the host's own bridges
# (Docker's, libvirt's) pass the host's iptables: it is born with bridge-nf-call-iptables=1 in every namespace.
# A module built into the kernel needs no loading, and a kernel that loads no modules cannot: either way this
# goes on (exit 0); where br_netfilter is still missing it says so, and `netlab doctor` names the fix.
set -uo pipefail

for m in veth bridge vxlan br_netfilter; do
  modprobe -q "$m" 2>/dev/null || true
done
if [ ! -d /proc/sys/net/bridge ]; then
  echo "setup.sh: br_netfilter is not in this kernel and could not be loaded (modprobe br_netfilter):" \
       "labs whose pods share a node need it; netlab doctor says what to do" >&2
fi
exit 0
