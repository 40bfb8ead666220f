"""An empty topology path (``load("")``, ``Lab.up("")``, a marker's ``topology=""``) names no file: said so, where
it was ``: no such file; check the path`` with nothing before the colon (or, for the marker, the test's folder)."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from netlab.api import load
from netlab.api.lab import Lab
from netlab.errors import UsageError
from netlab.pytest_topology import check_topology


class _Empty:
    def __fspath__(self) -> str:
        return ""


@pytest.mark.parametrize("path", ["", _Empty()])
def test_load_of_an_empty_path_says_the_path_is_empty(path):
    with pytest.raises(UsageError) as err:
        load(path)
    assert str(err.value) == ("netlab.api.load: topology: the path is empty; give a topology file's path, a dict, "
                              "or None for the built-in default")


def test_lab_up_of_an_empty_path_says_so_before_anything():
    with pytest.raises(UsageError, match=r"^Lab.up: topology: the path is empty"):
        Lab.up("", name="lfb-never")


def test_a_path_that_is_not_empty_is_still_read():
    with pytest.raises(Exception) as err:
        load(str(PurePath("/nonexistent-lfb", "t.yaml")))
    assert "no such file" in str(err.value) and "/nonexistent-lfb/t.yaml" in str(err.value)


def test_the_markers_empty_topology_is_said_so():
    with pytest.raises(Exception, match=r"topology: the path is empty; give a topology file's path \(beside"):
        check_topology("@pytest.mark.netlab", "")
