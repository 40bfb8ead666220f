"""requirements.lock and pyproject.toml agree, and the suite runs on exactly the locked packages.

pyproject.toml keeps version ranges (for people who ``pip install`` netlab);
requirements.lock pins one version of everything, with sha256 hashes, and is
what ``scripts/setup.sh`` installs. These tests fail when someone edits one of
the two and forgets ``./scripts/lock.sh``.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from itertools import product
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK_TEXT = (ROOT / "requirements.lock").read_text()
REFRESH = "refresh the lock with ./scripts/lock.sh"
REINSTALL = "install the lock: sudo ./scripts/setup.sh (or .venv/bin/pip install --require-hashes -r requirements.lock)"


def _lock_entries(text: str) -> dict[str, tuple[Requirement, list[str]]]:
    """``name -> (requirement, sha256 hashes)`` of a pip requirements file with ``--hash`` options."""
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    entries: dict[str, tuple[Requirement, list[str]]] = {}
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, _, options = line.partition(" --hash=")
        options = "--hash=" + options if options else ""
        req = Requirement(spec.strip())
        name = canonicalize_name(req.name)
        assert name not in entries, f"{name} is in the lock twice"
        entries[name] = (req, re.findall(r"--hash=sha256:([0-9a-f]{64})\b", options))
        assert re.sub(r"--hash=sha256:[0-9a-f]{64}", "", options).strip() == "", f"{line!r}: unexpected options"
    return entries


LOCK = _lock_entries(LOCK_TEXT)


def _pinned(req: Requirement) -> Version:
    (spec,) = req.specifier
    assert spec.operator == "==" and "*" not in spec.version, f"{req}: not pinned to one exact version"
    return Version(spec.version)


def _direct(pyproject: dict = PYPROJECT) -> list[tuple[str, Requirement]]:
    """Every requirement pyproject.toml states: runtime, the test extra, and the build backend."""
    out = [("dependencies", Requirement(r)) for r in pyproject["project"]["dependencies"]]
    out += [("test extra", Requirement(r)) for r in pyproject["project"]["optional-dependencies"]["test"]]
    out += [("build-system", Requirement(r)) for r in pyproject["build-system"]["requires"]]
    return out


def _disagreement(where: str, req: Requirement, lock: dict) -> str | None:
    """Why the lock does not satisfy one of pyproject.toml's requirements, or None."""
    name = canonicalize_name(req.name)
    if name not in lock:
        return f"{req} ({where} of pyproject.toml) is not in requirements.lock; {REFRESH}"
    locked, _ = lock[name]
    version = _pinned(locked)
    if not req.specifier.contains(version, prereleases=True):
        return f"requirements.lock pins {name}=={version}, outside pyproject.toml's {req} ({where}); {REFRESH}"
    if locked.marker is not None:
        return f"{name} is locked only for {locked.marker}, but pyproject.toml needs it everywhere; {REFRESH}"
    return None


def test_lock_parser_reads_what_pip_reads():
    text = ("# c\nfoo==1.0 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
            "    # via bar\nbaz==2 ; sys_platform == 'win32' \\\n    --hash=sha256:" + "c" * 64 + "\n")
    entries = _lock_entries(text)
    assert {n: (str(r), h) for n, (r, h) in entries.items()} == {
        "foo": ("foo==1.0", ["a" * 64, "b" * 64]),
        "baz": ('baz==2; sys_platform == "win32"', ["c" * 64]),
    }
    with pytest.raises(AssertionError, match="twice"):
        _lock_entries("foo==1 --hash=sha256:" + "a" * 64 + "\nFoo==1 --hash=sha256:" + "a" * 64 + "\n")


def test_every_entry_is_one_exact_version_with_hashes():
    assert len(LOCK) >= 10
    for name, (req, hashes) in LOCK.items():
        _pinned(req)
        assert hashes, f"{name} has no sha256 hash; {REFRESH}"
        assert not req.url and not req.extras, f"{name}: only plain name==version entries"


@pytest.mark.parametrize("where,req", _direct(), ids=lambda v: str(v))
def test_every_direct_dependency_is_locked_inside_its_range(where, req):
    assert _disagreement(where, req, LOCK) is None


def test_a_disagreement_is_caught():
    """Each way the two files can drift apart is named (so the test above can fail)."""
    pin = "--hash=sha256:" + "a" * 64
    lock = _lock_entries(f"click==8.1.0 {pin}\nrich==13.0.0 ; sys_platform == 'linux' {pin}\n")
    assert "outside pyproject.toml's click>=8.2" in _disagreement("dependencies", Requirement("click>=8.2"), lock)
    assert "not in requirements.lock" in _disagreement("test extra", Requirement("pytest>=8"), lock)
    assert "locked only for" in _disagreement("dependencies", Requirement("rich>=13"), lock)
    assert _disagreement("dependencies", Requirement("click>=8.1,<9"), lock) is None


# The places netlab runs (Debian 12: 3.11, Ubuntu 24.04: 3.12, and later Pythons) and the
# platforms a universal lock also covers: a requirement is needed if it holds in any of them.
ENVIRONMENTS = [
    {"python_version": py, "python_full_version": py + ".0", "sys_platform": sys_platform,
     "platform_system": system, "os_name": os_name, "platform_machine": machine,
     "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    for py in ("3.11", "3.12", "3.13", "3.14")
    for (sys_platform, system, os_name), machine in product(
        [("linux", "Linux", "posix"), ("darwin", "Darwin", "posix"), ("win32", "Windows", "nt")],
        ["x86_64", "aarch64", "AMD64", "arm64"])
]


def _needed_somewhere(marker: Marker | None, extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate(dict(env, extra=extra)) for env in ENVIRONMENTS for extra in extras or {""})


def _requirements_of(name: str, extras: set[str]) -> list[Requirement]:
    try:
        requires = importlib.metadata.distribution(name).requires or []
    except importlib.metadata.PackageNotFoundError:
        return []  # a package for another platform (colorama on Windows): not installed here
    return [req for req in map(Requirement, requires) if _needed_somewhere(req.marker, extras)]


def _unneeded(lock: dict, pyproject: dict = PYPROJECT) -> list[str]:
    """Lock entries that no requirement of pyproject.toml leads to, directly or through others."""
    needed: set[str] = set()
    todo = [(canonicalize_name(req.name), set(req.extras)) for _, req in _direct(pyproject)]
    while todo:
        name, extras = todo.pop()
        if name in needed and not extras:
            continue
        needed.add(name)
        todo += [(canonicalize_name(r.name), set(r.extras)) for r in _requirements_of(name, extras)
                 if canonicalize_name(r.name) not in needed or r.extras]
    return sorted(set(lock) - needed)


def test_lock_holds_nothing_pyproject_does_not_need():
    """Everything in the lock is a direct requirement or one of theirs, on some supported platform."""
    extra = _unneeded(LOCK)
    assert not extra, f"requirements.lock holds {extra}, which nothing in pyproject.toml needs; {REFRESH}"
    # A package left behind when a dependency is dropped from pyproject.toml is caught:
    without_xdist = {**PYPROJECT, "project": {**PYPROJECT["project"], "optional-dependencies": {
        "test": [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if "xdist" not in r]}}}
    assert _unneeded(LOCK, without_xdist) == ["execnet", "pytest-xdist"]


def test_installed_packages_are_the_locked_ones():
    """The suite runs on exactly the locked versions (setup.sh installed them), nothing resolved anew."""
    wrong = []
    for name, (req, _) in LOCK.items():
        if req.marker is not None and not req.marker.evaluate():
            continue  # for another platform
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} is not installed")
            continue
        if installed != _pinned(req):
            wrong.append(f"{name} {installed} is installed, the lock has {_pinned(req)}")
    assert not wrong, "; ".join(wrong) + f"; {REINSTALL}"


def test_every_requirement_of_an_installed_package_is_locked():
    """What pip would need on this machine is all in the lock (--require-hashes refuses anything else)."""
    missing = []
    for name, (req, _) in LOCK.items():
        if req.marker is not None and not req.marker.evaluate():
            continue
        for dep in _requirements_of(name, set()):
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                if canonicalize_name(dep.name) not in LOCK:
                    missing.append(f"{dep} (of {name})")
    assert not missing, f"not in requirements.lock: {missing}; {REFRESH}"


def test_the_pip_lock_pins_pip_alone_with_hashes():
    """requirements-pip.lock: the pip setup.sh puts in .venv where the venv's own has no --config-settings."""
    lock = _lock_entries((ROOT / "requirements-pip.lock").read_text())
    assert list(lock) == ["pip"], f"{sorted(lock)}; {REFRESH}"
    req, hashes = lock["pip"]
    assert _pinned(req) >= Version("22.1") and hashes and req.marker is None, f"{req}; {REFRESH}"
