"""``lgmp rooms --cluster redis://HOST:PORT[/DB] [--json]``: every room of a cluster, from the
directories its members publish in Redis with a TTL (a dead member's rooms vanish
with it). One line per room: code, member (node relay address), created, players, phase.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import trio

from .registry import Registry, RoomEntry, parse_redis_url

TIMEOUT = 5.0  # seconds for Redis to answer; longer means it is not there


def format_rooms(rooms: list[RoomEntry]) -> list[str]:
    if not rooms:
        return ["no rooms"]
    width = max(len("NODE"), *(len(r.member) for r in rooms))
    lines = [f"{'CODE':<5} {'NODE':<{width}} {'CREATED':<19} {'PLAYERS':>7} PHASE"]
    for r in rooms:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created))
        lines.append(f"{r.code:<5} {r.member:<{width}} {created:<19} {r.players:>7} {r.phase}")
    return lines


async def read_rooms(url: str) -> list[RoomEntry]:
    import coredis
    from coredis.retry import NoRetryPolicy

    async with coredis.Redis(**parse_redis_url(url), decode_responses=True, connect_timeout=TIMEOUT,
                             stream_timeout=TIMEOUT, retry_policy=NoRetryPolicy()) as client:
        with trio.fail_after(TIMEOUT):
            return await Registry(client).directory()


def run(args: argparse.Namespace) -> int:
    try:
        parse_redis_url(args.cluster)
        rooms = trio.run(read_rooms, args.cluster)
    except ImportError:
        print("lgmp rooms: --cluster needs coredis: pip install 'lgmp[cluster]'", file=sys.stderr)
        return 1
    except Exception as exc:  # a bad URL, Redis down or slow (coredis raises in exception groups)
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        print(f"lgmp rooms: cannot read the cluster at {args.cluster}: {exc.__class__.__name__}: {exc}",
              file=sys.stderr)
        return 1
    if args.json:
        for r in rooms:
            print(json.dumps({"code": r.code, "node": r.member, "created": r.created, "players": r.players,
                              "phase": r.phase}))
    else:
        print("\n".join(format_rooms(rooms)))
    return 0
