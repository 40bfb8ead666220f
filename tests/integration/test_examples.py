"""examples/pytest as a user runs it: a fresh virtualenv, the lock, ``pip install .`` (not editable), root.

One virtualenv for the module: the lock's packages are those scripts/setup.sh installed from it
(``--require-hashes``, then ``pip check``) in the virtualenv running these tests, linked in one by one (each
pinned version checked there), not unpacked and compiled again (13 s of CPU); netlab is built and installed
from a copy of the checkout, so no build/ or egg-info lands in it, and the checkout's editable install (its
``.pth`` and metadata) is not linked.
In it, from a folder outside the checkout (so ``import netlab`` can only be
the installed one):

- ``pytest`` on a copy of examples/pytest: the three tests pass, through the
  plugin the ``pytest11`` entry point registered, and their labs are gone after;
- ``pytest --fixtures`` lists the plugin's fixtures with their docstrings;
- ``python quickstart.py``: the Python API example of the README;
- ``mypy --strict`` is not run here: tests/unit/test_api_typing.py runs it on the checkout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from packaging.markers import Marker

from helpers import lab_namespaces

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pytest"
SKIP_IN_COPY = shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache",
                                      ".hypothesis", "*.pcap")


def run(argv: list[str], cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc


def pinned(lock: Path) -> dict[str, str]:
    """The lock's name==version pins for this machine (its environment markers), names as pip normalizes them."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^ ;\\]+) *(?:; *([^\\]+))?", lock.read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version, marker in pins
            if not marker or Marker(marker.strip()).evaluate()}


def link_the_lock(into: Path, lock: Path) -> None:
    """Link the lock's installed packages (this virtualenv's, from scripts/setup.sh) into a fresh one's
    site-packages: every entry but the checkout's editable netlab. Each pin of the lock (for this platform) must
    be there at its version."""
    site = Path(sysconfig.get_paths()["purelib"])
    have = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
            for d in importlib.metadata.distributions(path=[str(site)])}
    wanted = pinned(lock)
    assert {name: have.get(name) for name in wanted} == wanted, "this virtualenv is not the lock's: run setup.sh"
    for entry in site.iterdir():
        if not entry.name.startswith(("kube_netlab", "__editable__")):
            (into / entry.name).symlink_to(entry)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A virtualenv with the lock's packages and netlab installed from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("fresh")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP_IN_COPY)
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    fresh = subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                            "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    link_the_lock(Path(fresh), src / "requirements.lock")
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    own = run(pip + ["--no-deps", "--no-index", "--no-build-isolation", str(src)], tmp, timeout=300)
    assert own.returncode == 0, own.stderr[-3000:]
    return env


def test_netlab_is_installed_not_linked_to_the_checkout(venv, tmp_path):
    proc = run([str(venv / "bin" / "python"), "-c", "import sys, netlab, netlab.api; print(netlab.__file__); "
                "print(*sys.path, sep='\\n')"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    where, *path = (Path(line) for line in proc.stdout.splitlines())
    site = Path(sysconfig.get_paths()["purelib"])  # this virtualenv's, whose editable netlab links a checkout
    checkouts = {ROOT} | {Path(line) for pth in site.glob("__editable__*.pth") for line in pth.read_text().split()
                          if line.startswith("/")}
    assert not checkouts & {p.resolve() for p in path if p.is_absolute()}, path  # no .pth of it came with the lock
    assert str(where).startswith(str(venv)) and "site-packages" in where.parts, where
    assert (where.parent / "py.typed").exists()


def test_the_example_passes_from_the_installed_package(venv, tmp_path):
    work = tmp_path / "mytests"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    before = set(_netns())
    proc = run([str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-v", str(work)], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "3 passed" in out and "kube-netlab" in out, out  # the plugin, through its pytest11 entry point
    for name in ("test_client_reaches_a_pod_on_the_other_node", "test_pod_to_pod_traffic_is_not_source_natted",
                 "test_the_service_spreads_over_its_endpoints"):
        assert f"{name} PASSED" in out, out
    # The example's labs are named web-<random> (its topology's name): none may remain. (Other people's
    # labs come and go on this machine meanwhile: only the example's own names count.)
    left = {ns for ns in set(_netns()) - before if ns.startswith("web-")}
    assert not left, f"the example left namespaces behind: {sorted(left)}"


def test_pytest_fixtures_lists_the_plugins_fixtures_with_their_docstrings(venv, tmp_path):
    proc = run([str(venv / "bin" / "python"), "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"], tmp_path)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: no tests collected in an empty folder
    out = proc.stdout
    assert "fixtures defined from netlab.pytest_plugin" in out, out
    assert "netlab_lab -- " in out and "The lab of the test's ``@pytest.mark.netlab(topology" in out, out
    assert "netlab_factory -- " in out and "Bring up labs in a test" in out, out


def test_the_api_example_runs_from_the_installed_package(venv, tmp_path):
    work = tmp_path / "api"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    name = f"qs{uuid.uuid4().hex[:6]}"
    try:
        proc = run([str(venv / "bin" / "python"), str(work / "quickstart.py"), name], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"lab {name}: " in proc.stdout and "probes as expected" in proc.stdout, proc.stdout
        assert lab_namespaces(name) == [], "leaving the with block takes the lab down"
    finally:
        subprocess.run([str(venv / "bin" / "netlab"), "down", "--lab", name], capture_output=True, timeout=120)


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]
