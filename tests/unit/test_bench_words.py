"""The bench scripts' lines in words a reader can take whole (q16 nits 2 and 3): bench_validate.py's refusal not cut
mid-word, bench_up.py's memory line with a MemAvailable drop below zero said as noise, and "1 process"."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def script(name: str):
    sys.path.insert(0, str(SCRIPTS))  # bench_up imports scripts/bytecode.py beside it
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


REFUSAL = ("cluster.serviceCIDR 10.96.0.0/28 is full: the cluster DNS Service kube-system/kube-dns (added because "
           "the topology has Services) needs one more address; widen it")


def test_bench_validate_cuts_a_refusal_at_a_word_with_an_ellipsis():
    shortened = script("bench_validate").shortened
    assert shortened(REFUSAL, 70) == "cluster.serviceCIDR 10.96.0.0/28 is full: the cluster DNS Service…"
    assert shortened("short enough", 70) == "short enough"
    assert shortened("a" * 80, 70) == "a" * 69 + "…"  # one word longer than the width: cut, and said so


def test_bench_validate_prints_the_full_cidr_refusal_whole():
    line = script("bench_validate").full_cidr_line(1.0, 123.0, "refused: " + REFUSAL)
    assert line.endswith("refused: " + REFUSAL + " (was 78 s when quadratic)"), line


def test_bench_up_says_a_memavailable_rise_is_noise_and_counts_one_process():
    memory_line = script("bench_up").memory_line
    line = memory_line(procs=1, pss_kb=40 * 254, avail_kb=-375 * 40, pods=40)
    assert line == ("memory: 1 process, PSS 254 kB per pod; MemAvailable within noise (-375 kB per pod: "
                    "other processes freed memory meanwhile)"), line
    line = memory_line(procs=2, pss_kb=100 * 148, avail_kb=100 * 240, pods=100)
    assert line == ("memory: 2 processes, PSS 148 kB per pod; "
                    "MemAvailable 240 kB lower per pod (incl. the kernel's objects)"), line


def test_bench_services_says_slower_not_a_factor_below_one_faster():
    """qa62s: a new time above its baseline's printed "0.9x faster"."""
    ratio = script("bench_services").ratio
    assert ratio(1.0, 0.5) == "  2.0x faster"
    assert ratio(0.9, 1.0) == "  1.1x slower"
    assert ratio(1.0, 0.0) == "   n/a"


def test_bench_peers_rounds_mininets_loss():
    """qa62s: Mininet's pingAll loss was printed as it came, "loss 1.1111111111111112%"."""
    percent = script("bench_peers").percent
    assert percent(1.1111111111111112) == "1.1%" and percent(0) == "0.0%" and percent(None) == "?"


def test_bench_probe_full_matrix_row_names_udp_too():
    """qa62s: the row said "ICMP + TCP" of a run of all three protocols (netlab_probe(..., ("icmp", "tcp", "udp")))."""
    mod = script("bench_probe")
    line = mod.full_line({"probes": 7500, "s": 0.5, "as_expected": 7500})
    assert line == "  full matrix (ICMP, and TCP and UDP to the echo servers): 7500 probes in 0.500 s, 7500 as expected"
    assert 'netlab_probe(lab.lab, protos=("icmp", "tcp", "udp"))' in (SCRIPTS / "bench_probe.py").read_text()
