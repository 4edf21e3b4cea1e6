"""A cluster member's routing table: the workers' ``ShardPlan`` with leased letters.

On one machine a worker owns a fixed share of the letters for life. In a cluster a
member owns what it holds leases on, and it may hold a letter it must not use for new
rooms any more: one it is handing over (draining), or one whose lease ran out while
Redis could not be reached. Its existing rooms keep that letter, so JOINs for it are
still answered here; only new codes stop using it. ``creating`` says which letters new
codes may start with, and ``letters`` (what the hub draws from) answers with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rooms.shards import Address, ShardPlan
from .leases import LETTERS, Table


@dataclass(frozen=True, slots=True)
class ClusterPlan(ShardPlan):
    creating: str = ""  # letters new room codes may start with now

    @property
    def letters(self) -> str:
        return self.creating


def parse_address(text: str) -> Address:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), int(port)


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def plan_from(me: str, table: Table, creating: str) -> ClusterPlan:
    """The plan of member ``me`` for ``table``; member ids are relay addresses."""
    owners = tuple(table.owners)
    addresses = tuple((owner, parse_address(owner)) for owner in sorted({o for o in owners if o and o != me}))
    return ClusterPlan(me=me, owners=owners, addresses=addresses, creating=creating)


def empty_plan(me: str) -> ClusterPlan:
    """Before the first renewal: no letter is known, so no new room and nothing to relay."""
    return ClusterPlan(me=me, owners=(None,) * len(LETTERS), addresses=(), creating="")
