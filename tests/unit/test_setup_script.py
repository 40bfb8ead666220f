"""scripts/setup.sh refuses a Python older than 3.11 in one clear line, before it installs anything, and
leaves netlab byte-compiled.

The README's first command runs it on a fresh machine; Ubuntu 22.04's python3 is 3.10, and netlab needs
3.11 (NETLAB_PYTHON names another). Its full run is CI's first step (.ci/run), not repeated here: what it
left is checked.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setup.sh runs as root")


def fake_python(tmp_path: Path, version: str | None) -> str:
    """A python3 that says it is ``version`` and has no venv module (None: one that does not run at all)."""
    path = tmp_path / "python3"
    body = 'case "$2" in *print*) echo %s;; *) exit 1;; esac' % version if version else "exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("version, said", [("3.10", "3.10"), (None, "not a working Python")])
def test_a_python_too_old_is_refused_before_anything_is_installed(tmp_path, version, said):
    python = fake_python(tmp_path, version)
    tools = tmp_path / "bin"  # apt-get, dpkg-query and pip stand-ins that leave a mark if setup gets to them
    tools.mkdir()
    for name in ("apt-get", "dpkg-query", "pip", "modprobe", "ln"):
        (tools / name).write_text(f"#!/bin/sh\necho {name} >> {tmp_path}/ran\n")
        (tools / name).chmod(0o755)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "NETLAB_PYTHON": python}
    proc = subprocess.run(["/bin/bash", str(SETUP)], capture_output=True, text=True, env=env, timeout=60)
    assert not (tmp_path / "ran").exists(), (tmp_path / "ran").read_text()
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.splitlines() == [  # one line, as the README says (it printed two: QA hostenv57 8)
        f"setup.sh: netlab needs Python 3.11 or newer with its venv module; {python} is {said}; install one "
        "(Ubuntu 22.04: apt-get install python3.11 python3.11-venv), then "
        "sudo NETLAB_PYTHON=/usr/bin/python3.11 ./scripts/setup.sh"]


def run_with_default_python(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """setup.sh without NETLAB_PYTHON, in a private mount namespace where the distribution's /usr/bin/python3 is
    a fake running ``body`` (its first argument -c, its second the code), every system tool it installs with a
    stand-in that notes its name."""
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    tools = tmp_path / "bin"
    tools.mkdir()
    # Each stand-in reads what it is given, as the real tool does: `echo ... | debconf-set-selections` died of
    # SIGPIPE (141) under pipefail whenever a stand-in that read nothing exited before echo wrote (a loaded machine).
    for name in ("apt-get", "dpkg-query", "debconf-set-selections", "pip", "modprobe", "ln"):
        (tools / name).write_text(f"#!/bin/sh\necho {name} >> {tmp_path}/ran\ncat > /dev/null\n")
        (tools / name).chmod(0o755)
    script = f"mount --bind {fake} /usr/bin/python3 && PATH={tools}:/usr/bin:/bin exec /bin/bash {SETUP}"
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
                          stdin=subprocess.DEVNULL)
    ran = (tmp_path / "ran").read_text().split() if (tmp_path / "ran").exists() else []
    return proc, ran


def test_a_default_python_too_old_is_refused_before_anything_is_installed(tmp_path):
    """Ubuntu 22.04's python3 is 3.10: said in the line before apt-get runs, as for NETLAB_PYTHON (it was said
    after apt-get installed some 25 packages and the kernel modules were loaded: QA docs58 1)."""
    proc, ran = run_with_default_python(tmp_path, 'case "$2" in *print*) echo 3.10;; *) exit 1;; esac')
    assert ran == [] and proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "setup.sh: netlab needs Python 3.11 or newer with its venv module; /usr/bin/python3 is 3.10; install one "
        "(Ubuntu 22.04: apt-get install python3.11 python3.11-venv), then "
        "sudo NETLAB_PYTHON=/usr/bin/python3.11 ./scripts/setup.sh"]


def test_a_default_python_without_venv_is_installed_for_not_refused(tmp_path):
    """A recent python3 without its venv module (python3-venv not installed yet, Debian 12's minimal image) is
    what setup installs: it goes on to apt-get, and checks the whole Python again once it is in (still no venv
    here: refused then, after the packages and the kernel modules, before any .venv)."""
    proc, ran = run_with_default_python(tmp_path, 'case "$2" in *print*) echo 3.12;; *venv*) exit 1;; *) exit 0;; esac')
    assert ran[:2] == ["dpkg-query", "dpkg-query"] and "apt-get" in ran and "modprobe" in ran, ran
    assert proc.returncode == 3 and "pip" not in ran and "ln" not in ran
    assert proc.stderr.splitlines()[-1].startswith(
        "setup.sh: netlab needs Python 3.11 or newer with its venv module; /usr/bin/python3 is 3.12; install one")


def test_setup_left_every_netlab_module_byte_compiled():
    """An editable install leaves netlab as source; where nothing may write bytecode (PYTHONDONTWRITEBYTECODE,
    set where these tests were written; a read-only checkout) each command would compile every module it
    loads, ~0.1 s of every run. setup.sh compiles them (a module edited since is compiled again by Python).
    Where Python writes bytecode itself, the modules earlier tests imported have it anyway and this may pass
    without setup's step; where it does not, it fails without it."""
    modules = sorted((ROOT / "netlab").rglob("*.py"))
    missing = [str(m.relative_to(ROOT)) for m in modules if not os.path.exists(importlib.util.cache_from_source(m))]
    assert len(modules) > 100 and not missing, f"no bytecode for {missing[:5]} (of {len(missing)}): run " \
                                                "./scripts/setup.sh again"


MODULES = ROOT / "scripts" / "kernel_modules.sh"


def run_modules(tmp_path: Path, exit_code: int, hide_bridge: bool) -> tuple[subprocess.CompletedProcess, list[str]]:
    """scripts/kernel_modules.sh with a modprobe stand-in that notes what it is asked and exits ``exit_code``
    (1: a kernel that loads no modules, this VM's); ``hide_bridge``: in a private mount namespace where
    /proc/sys/net holds nothing, as a kernel without br_netfilter has no /proc/sys/net/bridge."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "modprobe").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/asked\nexit {exit_code}\n')
    (tools / "modprobe").chmod(0o755)
    script = f"PATH={tools}:/usr/bin:/bin exec /bin/bash {MODULES}"
    if hide_bridge:
        script = f"mount -t tmpfs none /proc/sys/net && {script}"
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script],
                          capture_output=True, text=True, timeout=60)
    asked = (tmp_path / "asked").read_text().splitlines() if (tmp_path / "asked").exists() else []
    return proc, asked


@pytest.mark.parametrize("exit_code", [0, 1])
def test_setup_loads_br_netfilter_and_goes_on_where_it_cannot(tmp_path, exit_code):
    """The default lab sets net.bridge.bridge-nf-call-iptables=1, which only br_netfilter provides, and nothing
    loads it on its own: setup loads it with the others. Built in (this VM's kernel) or not loadable, setup
    goes on, silent while /proc/sys/net/bridge is there."""
    assert os.path.isdir("/proc/sys/net/bridge")
    proc, asked = run_modules(tmp_path, exit_code, hide_bridge=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert asked == ["-q veth", "-q bridge", "-q vxlan", "-q br_netfilter"]


def test_setup_says_so_when_br_netfilter_could_not_be_loaded(tmp_path):
    proc, asked = run_modules(tmp_path, 1, hide_bridge=True)
    assert proc.returncode == 0 and "-q br_netfilter" in asked
    assert proc.stderr.splitlines() == [
        "setup.sh: br_netfilter is not in this kernel and could not be loaded (modprobe br_netfilter): labs whose "
        "pods share a node need it; netlab doctor says what to do"]


def test_setup_runs_the_module_script():
    text = SETUP.read_text()
    assert '\n"$here/scripts/kernel_modules.sh"\n' in text and "modprobe" not in text


def stand_ins(tmp_path: Path) -> Path:
    """apt-get, dpkg-query, pip and the like that note their name in ``ran`` if setup gets to them."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("apt-get", "dpkg-query", "debconf-set-selections", "pip", "modprobe", "ln"):
        (tools / name).write_text(f"#!/bin/sh\necho {name} >> {tmp_path}/ran\ncat > /dev/null\n")
        (tools / name).chmod(0o755)
    return tools


def run_args(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    """setup.sh with ``args``, every tool it runs a stand-in and NETLAB_PYTHON one too old: a setup.sh that took
    no notice of its arguments (the old one) stops at that Python's line, exit 3, having done nothing either."""
    tools = stand_ins(tmp_path)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "NETLAB_PYTHON": fake_python(tmp_path, "3.10")}
    return subprocess.run(["/bin/bash", str(SETUP), *args], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--help"], ["-h"]])
def test_help_prints_the_usage_and_does_nothing(tmp_path, args):
    """QA mf63 defect 4: `sudo ./scripts/setup.sh --help` ran the whole install."""
    proc = run_args(tmp_path, args)
    assert proc.returncode == 0 and proc.stderr == "" and not (tmp_path / "ran").exists()
    assert proc.stdout.startswith("usage: sudo [NETLAB_PYTHON=/path/to/python3.11] ./scripts/setup.sh\n")


@pytest.mark.parametrize("args", [["--bogus"], ["install"], ["--help", "now"]])
def test_an_unknown_argument_is_one_line_exit_2_and_nothing_done(tmp_path, args):
    proc = run_args(tmp_path, args)
    assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "ran").exists()
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("setup.sh: takes no arguments (got ")


# The venv's pip as Ubuntu 22.04's python3.11 venv has it (python3-pip-whl's 22.0.2): no --config-settings, which
# it refuses in pip's words, exit 2, until requirements-pip.lock's pip is installed over it; every call noted.
OLD_PIP = """#!/bin/sh
echo "pip $*" >> {log}
case "$*" in
  "install --help") echo "  -e, --editable <path/url>"; [ -e {new} ] && echo "  -C, --config-settings <settings>"; exit 0;;
  *requirements-pip.lock*) touch {new};;
  *--config-settings*) [ -e {new} ] || {{ echo "no such option: --config-settings" >&2; exit 2; }};;
esac
exit 0
"""


@pytest.mark.parametrize("new_pip", [False, True], ids=["pip 22.0.2", "pip with --config-settings"])
def test_a_venv_pip_without_config_settings_is_replaced_by_the_locked_one_first(tmp_path, new_pip):
    """QA mf63 defect 3: on Ubuntu 22.04 (NETLAB_PYTHON=/usr/bin/python3.11) the venv's pip is 22.0.2, which has no
    --config-settings: setup.sh kept it and `pip install --config-settings editable_mode=compat -e` stopped it
    (set -e). It installs requirements-pip.lock's pip (hashes checked) first, there only. Run in a copy of the
    checkout whose .venv is made of stand-ins, in a private mount namespace over /usr/local/bin."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "kernel_modules.sh", "make_launcher.sh"):
        (checkout / "scripts" / name).write_bytes((ROOT / "scripts" / name).read_bytes())
        (checkout / "scripts" / name).chmod(0o755)
    for name in ("requirements.lock", "requirements-pip.lock"):
        (checkout / name).write_bytes((ROOT / name).read_bytes())
    (checkout / "netlab").mkdir()
    (checkout / "netlab" / "__init__.py").write_text("")
    venv = checkout / ".venv" / "bin"
    venv.mkdir(parents=True)
    log, new = tmp_path / "pip.log", tmp_path / "new-pip"
    if new_pip:
        new.touch()
    files = {"python": "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n", "pip": OLD_PIP.format(log=log, new=new),
             "netlab": "#!/bin/sh\necho netlab 0\n"}
    for name, text in files.items():
        (venv / name).write_text(text)
        (venv / name).chmod(0o755)
    (venv / "python3").symlink_to("python")
    tools = stand_ins(tmp_path)
    (tools / "dpkg-query").write_text("#!/bin/sh\necho 'install ok installed'\n")  # every package there
    bin_dir = tmp_path / "local-bin"
    bin_dir.mkdir()
    script = (f"mount --bind {bin_dir} /usr/local/bin && PATH={tools}:/usr/bin:/bin "
              f"NETLAB_PYTHON=/usr/bin/python3 exec /bin/bash {checkout}/scripts/setup.sh")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    calls = log.read_text().splitlines()
    upgrade = f"pip install -q --require-hashes --only-binary :all: -r {checkout}/requirements-pip.lock"
    editable = next(i for i, c in enumerate(calls) if "--config-settings editable_mode=compat" in c)
    if new_pip:
        assert upgrade not in calls  # the distribution's pip kept where it can
    else:
        assert calls.index(upgrade) < editable, calls
    assert "setup.sh: netlab 0 installed" in proc.stdout
