"""Impairments of an interface: what ``tc`` would set on its egress, written as ``tc`` writes it.

An impairment slows, delays or drops what an interface *sends* (a qdisc acts on
a device's transmit queue), so on a pod's ``eth0`` it shapes what the pod
sends; to shape both ways, impair both ends (the pod's ``eth0``, and the node's
``cni0`` for what the node routes to its pods: frames bridged between two
pods of one node leave through the bridge's ports, not through ``cni0``).

- ``rate`` (``10mbit``, ``512kbit``, ``1gbit``; tc's units, ``kbps`` being
  kilo*bytes* a second): a token bucket (``tbf``) as the root qdisc;
- ``delay`` and ``jitter`` (``20ms``, ``500us``, ``1s``): ``netem``, where the
  kernel has ``sch_netem``;
- ``loss`` (``1%``): an nf_tables ``netdev`` rule (``numgen random``) that
  drops that share where the interface's frames arrive (its veth's peer) or,
  for a bridge or a VXLAN device, as they leave it (plan/impair.py): loss on
  the wire, which the sender is not told of, on every kernel with the netdev
  family (no netem needed); ``nft list table netdev netlab-impair`` shows it.

The values are kept as written (the topology round-trips); the numbers the
kernel takes come from the ``*_bits``/``*_us``/``loss_fraction`` helpers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from netlab.model.location import show

# tc(8)'s rate units (iproute2 tc_util.c get_rate64): bits, or bytes ("bps" is bytes a second in tc), decimal
# multipliers and binary ones (kibit), their names read case-insensitively (10Mbit, as tc prints it), a bare
# number bits a second.
RATE_UNITS = {"": 1, "bit": 1, "kibit": 1024, "kbit": 10**3, "mibit": 1024**2, "mbit": 10**6, "gibit": 1024**3,
              "gbit": 10**9, "tibit": 1024**4, "tbit": 10**12, "bps": 8, "kibps": 8 * 1024, "kbps": 8 * 10**3,
              "mibps": 8 * 1024**2, "mbps": 8 * 10**6, "gibps": 8 * 1024**3, "gbps": 8 * 10**9,
              "tibps": 8 * 1024**4, "tbps": 8 * 10**12}
# tc's times (get_time, and netem's get_time64 for ns), case-insensitive too; a bare number microseconds.
TIME_UNITS = {"": 1, "s": 10**6, "sec": 10**6, "secs": 10**6, "ms": 1000, "msec": 1000, "msecs": 1000,
              "us": 1, "usec": 1, "usecs": 1, "ns": 0.001, "nsec": 0.001, "nsecs": 0.001}


def _either_case(units: dict) -> str:
    """A regex of ``units`` in any case, written with classes ([mM][bB]...) so the JSON schema keeps it."""
    words = sorted((u for u in units if u), key=len, reverse=True)
    return "(" + "|".join("".join(f"[{c}{c.upper()}]" for c in w) for w in words) + ")?"


_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)" + _either_case(RATE_UNITS) + "$")
_TIME = re.compile(r"^([0-9]+(?:\.[0-9]+)?)" + _either_case(TIME_UNITS) + "$")
_LOSS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)%$")
RATE_MIN = 8_000  # bits/s: below one 1500-byte packet every 1.5 s nothing sensible gets through
RATE_MAX = 100 * 10**9
DELAY_MAX_US = 60 * 1_000_000
# What netlab gives the qdiscs besides the topology's numbers (kernel/tc.py encodes them, plan/impair.py shows them).
LATENCY_US = 50_000  # how long a packet may wait in the token bucket before tbf drops it
NETEM_LIMIT = 1000  # packets netem holds (tc's default)
# A loss rule draws a random number in [0, LOSS_SCALE) per packet (nft's numgen random mod): its resolution. Below
# 2^31, as nft 1.0.6's JSON prints the modulus as a signed 32-bit number.
LOSS_SCALE = 10**9


def burst_bytes(rate_bits: int) -> int:
    """The token bucket's depth: 10 ms of the rate, at least two full-size frames (tc needs >= MTU)."""
    return max(rate_bits // 8 // 100, 3200)


def _written_bits(text: str) -> int:
    m = _RATE.fullmatch(text)
    if not m:
        raise ValueError(text)
    return round(float(m.group(1)) * RATE_UNITS[(m.group(2) or "").lower()])


def rate_bits(text: str) -> int:
    """The rate the kernel keeps for ``text``: whole bytes a second, rounded down, as tc's get_rate64 sends it
    (``tc qdisc add ... tbf rate 333333bit`` shows ``rate 333328bit``): what is planned, set and compared."""
    return _written_bits(text) // 8 * 8


def time_us(text: str) -> int:
    m = _TIME.fullmatch(text)
    if not m:
        raise ValueError(text)
    return round(float(m.group(1)) * TIME_UNITS[(m.group(2) or "").lower()])


def loss_fraction(text: str) -> float:
    m = _LOSS.fullmatch(text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) / 100


def _rate(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # StrictStr says what type it wanted
    if not _RATE.fullmatch(value):
        raise ValueError(f"{show(value)} is not a rate like 10mbit, 512kbit or 1gbit (tc's units, in any case: bit, "
                         "kbit, mbit, gbit, kibit ...; bps, kbps, mbps, gbps are bytes a second)")
    bits = _written_bits(value)
    if not RATE_MIN <= bits <= RATE_MAX:
        raise ValueError(f"{show(value)} is out of range: a rate is 8kbit to 100gbit")
    return value


def _time(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not _TIME.fullmatch(value):
        raise ValueError(f"{show(value)} is not a time like 20ms, 500us or 1s (tc's units, in any case: s, sec, "
                         "ms, msec, us, usec, ns)")
    if time_us(value) > DELAY_MAX_US:
        raise ValueError(f"{show(value)} is more than 60s")
    return value


def _loss(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not _LOSS.fullmatch(value):
        raise ValueError(f"{show(value)} is not a percentage like 1% or 0.5% (quote it in YAML: loss: \"1%\")")
    if loss_fraction(value) > 1:
        raise ValueError(f"{show(value)} is more than 100%")
    return value


Rate = Annotated[StrictStr, Field(pattern=_RATE.pattern), BeforeValidator(_rate)]
Time = Annotated[StrictStr, Field(pattern=_TIME.pattern), BeforeValidator(_time)]
Loss = Annotated[StrictStr, Field(pattern=_LOSS.pattern), BeforeValidator(_loss)]
# Interface names as the kernel takes them (IFNAMSIZ - 1 bytes, no '/', no blanks).
IfName = Annotated[StrictStr, Field(min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.-]+$")]

# Which interfaces of a pod and of a node can be impaired (the ones the lab makes there).
POD_INTERFACES = ("eth0",)


def node_interfaces(mode: str, vni: int, bridge: str | None = "cni0") -> tuple[str, ...]:
    """A node's interfaces netlab can impair: eth0, the pods' bridge (netlab's cni0, or the one a user's conflist's
    bridge plugin names; None: its plugins make none, ptp) and, in VXLAN mode, flannel.<VNI>."""
    return ("eth0",) + ((bridge,) if bridge else ()) + ((f"flannel.{vni}",) if mode == "vxlan" else ())


def describe(spec: dict[str, str | None]) -> str:
    """``rate 10mbit delay 20ms jitter 5ms loss 1%`` (only what is set), or ``none``."""
    parts = [f"{k} {spec[k]}" for k in ("rate", "delay", "jitter", "loss") if spec.get(k)]
    rate = spec.get("rate")
    if rate and _RATE.fullmatch(rate) and rate_bits(rate) != _written_bits(rate):  # the kernel's whole bytes
        parts[0] += f" ({rate_bits(rate)}bit: whole bytes a second)"
    return " ".join(parts) or "none"


class Impairment(BaseModel):
    """What one interface's egress suffers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    rate: Rate | None = Field(None, description="Egress rate limit (tbf), tc units in any case: 10mbit, "
                                  "10Mbit, 512kbit, 1gbit.")
    delay: Time | None = Field(None, description="Added delay (netem; refused where the kernel lacks sch_netem).")
    jitter: Time | None = Field(None, description="Delay variation (netem), with delay.")
    loss: Loss | None = Field(None, description="Random loss, like \"1%\" (an nftables netdev rule where "
                                  "the frames arrive: silent to the sender, as on a wire).")

    def spec(self) -> dict[str, str | None]:
        return {"rate": self.rate, "delay": self.delay, "jitter": self.jitter, "loss": self.loss}

    def no_effect(self) -> list[tuple[str, str]]:
        """The settings that would change nothing, as (field, why): a loss of 0% (a rule that never
        drops), a delay of 0 alone (netem that holds nothing back; with a jitter it is the jitter's centre),
        a jitter of 0. Refused, as a rate of 0 is, so an impairment always says what it does."""
        out = []
        if self.loss is not None and loss_fraction(self.loss) == 0:
            out.append(("loss", f"{show(self.loss)} drops nothing: leave loss out"))
        elif self.loss is not None and round(loss_fraction(self.loss) * LOSS_SCALE, 6) < 1:
            # The rule draws a number below 10^9 (plan/impair.py): a smaller chance drops nothing.
            out.append(("loss", f"{show(self.loss)} is below the smallest chance the kernel draws (1 in 10^9, "
                                "0.0000001%): it drops nothing; leave loss out or raise it"))
        if self.delay is not None and time_us(self.delay) == 0 and not self.jitter:
            out.append(("delay", f"{show(self.delay)} delays nothing: leave delay out"))
        if self.jitter is not None and time_us(self.jitter) == 0:
            out.append(("jitter", f"{show(self.jitter)} varies nothing: leave jitter out"))
        return out
