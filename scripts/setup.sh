#!/usr/bin/env bash
# Set up a fresh Debian 12 / Ubuntu 24.04 machine for netlab. Idempotent; run as root.
#   sudo ./scripts/setup.sh
# Installs the system tools netlab and its tests use, creates .venv in the
# checkout, installs exactly the packages of requirements.lock into it (every
# file checked against its sha256), then netlab itself without resolving
# anything again, and puts /usr/local/bin/netlab (a launcher of .venv's) so that `sudo netlab` works.
#   ./scripts/setup.sh --help   its usage; it takes no other argument
set -euo pipefail

usage="usage: sudo [NETLAB_PYTHON=/path/to/python3.11] ./scripts/setup.sh
Installs the system packages netlab uses (apt-get), loads the kernel modules a lab uses, makes .venv in the
checkout with exactly the packages of requirements.lock, installs netlab into it (editable) and puts
/usr/local/bin/netlab. Idempotent. NETLAB_PYTHON: a Python 3.11 or newer (Ubuntu 22.04: /usr/bin/python3.11)."
# Its arguments are read before anything is done: --help is no install (QA mf63 defect 4).
case "$#:${1-}" in
  0:) ;;
  1:-h|1:--help) echo "$usage"; exit 0 ;;
  *) echo "setup.sh: takes no arguments (got ${*@Q}); see ./scripts/setup.sh --help" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (sudo ./scripts/setup.sh)" >&2
  exit 3
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

# netlab needs Python 3.11 or newer with its venv module: the distribution's python3 on Debian 12 and
# Ubuntu 24.04; elsewhere (Ubuntu 22.04: apt-get install python3.11 python3.11-venv) name one in
# NETLAB_PYTHON. Checked before anything is installed: NETLAB_PYTHON, else the distribution's python3 when there
# is one (its version: python3-venv may be what is missing, which setup installs); then again, whole, once it is.
version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
python_ok() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}
too_old() {
  echo "setup.sh: netlab needs Python 3.11 or newer with its venv module; $1 is $(version "$1" ||
    echo "not a working Python"); install one (Ubuntu 22.04: apt-get install python3.11 python3.11-venv)," \
       "then sudo NETLAB_PYTHON=/usr/bin/python3.11 ./scripts/setup.sh" >&2
  exit 3
}
if [ -n "${NETLAB_PYTHON:-}" ]; then
  python_ok "$NETLAB_PYTHON" || too_old "$NETLAB_PYTHON"
elif version /usr/bin/python3 >/dev/null &&
    ! /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  too_old /usr/bin/python3   # Ubuntu 22.04's 3.10: said before apt-get installs anything
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "setup.sh: this sets up Debian or Ubuntu (apt-get); elsewhere install what it lists by hand" >&2
  exit 3
fi

packages=(
  iproute2          # ip/bridge: for learners and for the tests' independent view of the kernel
  iptables          # iptables-restore/iptables-save: kube-proxy-style Service rules
  nftables          # nft: the nf_tables view of those rules, for learners and tests (netlab doctor checks it)
  libnftables1      # nft's own library: netlab writes kube-proxy's nftables table through it, in its process
  conntrack         # conntrack -L/-D: Service NAT state
  python3 python3-venv python3-pip
  iputils-ping fping socat curl   # ordinary tools learners and tests use
  tcpdump tshark    # captures (tshark decodes VXLAN); tcpdump brings libpcap, which compiles `netlab capture` filters
  dnsmasq-base      # cluster DNS
  bind9-dnsutils    # dig, nslookup, host: the DNS tutorials' tools, run in a pod (netlab exec client -- dig ...)
  graphviz          # netlab graph -o svg/png
  iperf3            # tests measure a rate impairment with it; learners too
  net-tools         # arp -an, as the tutorials show the ARP table
  containernetworking-plugins   # the CNI reference plugins (bridge, host-local, loopback, ptp): network.cni: reference
  jq                # examples/cni/bash-bridge, the CNI plugin in bash
  mininet bridge-utils          # scripts/bench_peers.py: the same lab shapes built by Mininet (LinuxBridge uses brctl)
  kmod procps util-linux
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # tshark asks whether non-root users may capture; keep Debian's default (no).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  # iperf3 asks whether to run a server on the host at boot: no (tests start their own in a lab pod).
  echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The kernel modules a lab uses, br_netfilter among them (built in, or not loadable here: setup goes on).
"$here/scripts/kernel_modules.sh"

python="${NETLAB_PYTHON:-/usr/bin/python3}"
python_ok "$python" || too_old "$python"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
elif [ "$(version "$venv/bin/python")" != "$(version "$python")" ]; then
  "$python" -m venv --clear "$venv"   # made by another Python (NETLAB_PYTHON changed): made again
fi
# The locked runtime and test dependencies and the build backend (setuptools), wheels only:
# pip refuses any file whose sha256 is not in the lock, whichever index or find-links
# directory the machine's pip configuration offers it from (the lock holds every PyPI file
# of each pinned version, so a mirror serving PyPI's files is fine, and pip prefers a
# file whose hash it knows). The venv's own pip (from the distribution) is kept where it can install netlab
# below (--config-settings: pip 22.1 and newer); an older one (Ubuntu 22.04's python3.11 venv gets
# python3-pip-whl's 22.0.2, which stops at "no such option") is first replaced by the pip of
# requirements-pip.lock, checked against its sha256 as every other file (scripts/lock.sh pins it).
options="$("$venv/bin/pip" install --help 2>/dev/null || true)"   # whole: no early SIGPIPE under pipefail
case "$options" in
  *--config-settings*) ;;
  *) "$venv/bin/pip" install -q --require-hashes --only-binary :all: -r "$here/requirements-pip.lock" ;;
esac
"$venv/bin/pip" install -q --require-hashes --only-binary :all: -r "$here/requirements.lock"
# netlab itself, editable, built by the locked setuptools; nothing is resolved again. "compat": a path
# in a .pth file, not setuptools' import hook, which type checkers cannot follow (`mypy --strict` on a
# user's tests would not find netlab) and which every command would pay ~8 ms to load.
"$venv/bin/pip" install -q --no-deps --no-build-isolation --config-settings editable_mode=compat -e "$here"
# An editable install leaves netlab's modules as source; each command would compile those it loads
# where nothing may write their bytecode (PYTHONDONTWRITEBYTECODE set, a read-only checkout): ~0.1 s of
# every `netlab` run here. Compiled once now; Python compiles again only a module edited since. Only
# time is at stake: a checkout that takes no bytecode is said in a line, and setup goes on.
"$venv/bin/python" -m compileall -q "$here/netlab" >/dev/null 2>&1 ||
  echo "setup.sh: could not byte-compile $here/netlab; each netlab command compiles what it loads" >&2
# So is the code Python writes for each dataclass's methods and each string annotation (~900 texts for
# `status`, ~50 ms of every start): netlab/fncache.py keeps it compiled beside the bytecode.
"$venv/bin/python" -m netlab.fncache >/dev/null 2>&1 ||
  echo "setup.sh: could not fill netlab's dataclass cache; each netlab command compiles those methods" >&2
"$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; echo "setup.sh: .venv is inconsistent" >&2; exit 3; }
# root's `netlab` (and `kube-netlab`, the same program under the package's name): a launcher that starts Python
# with SIGINT, SIGTERM and SIGHUP held off until netlab's first line, so that a Ctrl-C (a SIGTERM, a SIGHUP) while
# Python starts is netlab's one line and 130 (143, 129), not Python's traceback (make_launcher.sh); where it cannot
# be written, the console script itself, as before.
for name in netlab kube-netlab; do
  "$here/scripts/make_launcher.sh" "$venv/bin/python3" "/usr/local/bin/$name" ||
    ln -sfn "$here/.venv/bin/netlab" "/usr/local/bin/$name"
done
echo "setup.sh: netlab $("$here/.venv/bin/netlab" --version | awk '{print $NF}') installed; check the machine: sudo netlab doctor; then: sudo netlab up"
