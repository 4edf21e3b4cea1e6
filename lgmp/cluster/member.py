"""One cluster member: a server process that keeps its leases in Redis and its routing
table current. It runs as one trio task beside the server (``run``).

Every ``renew_every`` (a third of the lease TTL) it sends one heartbeat
(``Registry.heartbeat``: renew, prune, read the table), then acts on
``leases.plan_moves`` (claim free letters up to its share, drain and release the
excess), swaps a new ``ClusterPlan`` into the hub -- a lost lease stops new rooms
with that letter from that instant -- and publishes its room directory (one SET with
the TTL). That is two or three Redis commands per renewal whatever the number of
rooms or games: nothing on the hot path touches Redis.

Redis down (refused, timed out, any error): the member keeps its table, so JOINs are
still routed and relayed, and games never notice. New rooms keep opening on the
letters it holds until their leases would have lapsed in Redis (by the local clock,
``leases.local_expiry``); from then on JOIN HOST is answered 3 and one log line
says why. Each renewal tries again; when Redis answers, the member takes back the
letters nobody else took meanwhile and goes on. Nothing here raises out of ``run``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass

import trio

from ..rooms.shards import Address
from ..rooms.view import RoomViews
from .leases import creating_letters, local_expiry, plan_moves
from .plan import empty_plan, format_address, plan_from
from .registry import Registry, parse_redis_url

log = logging.getLogger("lgmp.cluster")

#: Default lease TTL (seconds): how long a dead member's letters stay unusable before
#: another takes them over. Shorter is faster failover for more Redis traffic; 10 s
#: is one renewal every 3.3 s per member.
LEASE_TTL = 10.0
#: Redis calls get at most this long, and never more than half a renewal period: a
#: Redis that does not answer by then is treated as down for this round.
CALL_TIMEOUT = 2.0
#: After an unexpected error around the Redis client itself, wait this long before
#: making a new one (a bug must not spin).
RESTART_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    url: str  # redis://HOST:PORT[/DB]
    advertise: Address  # this node's relay address as other nodes reach it; worker i: port + i
    lease_ttl: float = LEASE_TTL
    prefer: str = ""  # letters this node prefers (dealt among its workers)

    @property
    def renew_every(self) -> float:
        return self.lease_ttl / 3

    def member_address(self, worker: int) -> Address:
        return self.advertise[0], self.advertise[1] + worker


class ClusterMember:
    def __init__(self, server, settings: ClusterSettings, *, worker: int = 0, workers: int = 1, client=None):
        self.server = server
        self.settings = settings
        self.me = format_address(settings.member_address(worker))
        self.prefer = settings.prefer[worker::workers]
        self.info = {"node": format_address(settings.advertise), "worker": worker + 1, "pid": os.getpid(),
                     "started": round(time.time(), 3), "prefer": self.prefer}
        self.expiries: dict[str, float] = {}  # letter -> when its lease lapses (local clock)
        self.draining = ""
        self.table = None  # the last Table read
        self.redis_up: bool | None = None  # None until the first answer or failure
        self._creating = ""
        self._lapsed_logged = False
        self._rounds = 0  # renewals in a row that reached Redis
        self._client = client  # a test may give its own coredis client
        self._running = trio.CancelScope()
        self._stopped: trio.Event | None = None
        self.views = RoomViews()
        server.watch(lambda events, now: self.views.apply(events))
        server.hub.shard = empty_plan(self.me)

    @property
    def held(self) -> str:
        return "".join(sorted(self.expiries))

    @property
    def timeout(self) -> float:
        return min(CALL_TIMEOUT, self.settings.renew_every / 2)

    # --- running --------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Renew, refresh and publish until cancelled or ``leave``. Never raises (but Cancelled)."""
        self._stopped = trio.Event()
        task_status.started()
        try:
            with self._running:
                while True:
                    try:
                        if self._client is not None:
                            await self._loop(self._client)
                        else:
                            async with self._new_client() as client:
                                await self._loop(client)
                    except Exception:  # the client library itself failed: log, pause, start again
                        log.exception("cluster: the Redis client failed; starting a new one")
                        self._redis_failed("client error")
                        await trio.sleep(RESTART_PAUSE)
        finally:
            self._stopped.set()

    def _new_client(self):
        import coredis
        from coredis.retry import NoRetryPolicy

        # coredis logs at INFO each time it sends a script Redis no longer has cached
        # (after a restart); that is routine here, not news.
        logging.getLogger("coredis").setLevel(max(logging.WARNING, logging.getLogger("coredis").level))

        return coredis.Redis(**parse_redis_url(self.settings.url), decode_responses=True,
                             connect_timeout=self.timeout, stream_timeout=self.timeout,
                             retry_policy=NoRetryPolicy(), client_name=f"lgmp-{self.me}")

    async def _loop(self, client) -> None:
        registry = Registry(client)
        while True:
            started = trio.current_time()
            await self.renew(registry)
            next_round = started + self.settings.renew_every
            # Between renewals, wake when a lease lapses: with Redis down that is when
            # new rooms must stop.
            while (now := trio.current_time()) < next_round:
                lapse = min((e for e in self.expiries.values() if e > now), default=math.inf)
                await trio.sleep_until(min(next_round, lapse))
                self._apply(trio.current_time())

    async def renew(self, registry: Registry) -> None:
        """One round: heartbeat, lease moves, new plan, directory."""
        sent = trio.current_time()
        beat = await self._call(registry.heartbeat(self.me, self.info, self.settings.lease_ttl, self.held))
        if beat is None:
            self._apply(trio.current_time())
            return
        self._redis_back()
        self._rounds += 1
        lost = set(self.expiries) - set(beat.held)
        if lost:
            log.warning("cluster: lost the lease on %s (another member holds it now): no new rooms with %s",
                        "".join(sorted(lost)), "them" if len(lost) > 1 else "it")
        expiry = local_expiry(sent, self.settings.lease_ttl)
        self.expiries = {letter: expiry for letter in beat.held}
        table = beat.table.with_owner(beat.held, self.me)
        moves = plan_moves(self.me, self.prefer, table, beat.held, Counter(code[0] for code in self.views.rooms))
        # On the first round after starting or after Redis was away (maybe restarted
        # empty), the others may not have registered again yet: the share would look
        # too big and this member would grab their letters. Only take back its own
        # (the heartbeat did) and claim new ones from the next round on.
        if moves.acquire and self._rounds >= 2:
            sent = trio.current_time()
            got = await self._call(registry.claim(self.me, moves.acquire, self.settings.lease_ttl))
            if got:
                expiry = local_expiry(sent, self.settings.lease_ttl)
                self.expiries.update({letter: expiry for letter in got})
                table = table.with_owner(got, self.me)
        if moves.release:
            released = await self._call(registry.release(self.me, moves.release))
            if released is not None:
                for letter in moves.release:
                    self.expiries.pop(letter, None)
                table = table.with_owner(moves.release, None)
                log.info("cluster: released %s (over this member's share of %d live members)",
                         moves.release, len(table.members))
        self.draining = "".join(letter for letter in moves.drain if letter in self.expiries)
        self.table = table
        self._apply(trio.current_time())
        await self._call(registry.publish_rooms(self.me, self._directory(), self.settings.lease_ttl))

    async def _call(self, request):
        """A Redis call bounded by the timeout; its result, or None when Redis failed."""
        try:
            with trio.move_on_after(self.timeout):
                return await request
            self._redis_failed(f"no answer within {self.timeout:g} s")
        except Exception as exc:  # coredis errors, OSError: Redis is down for this round
            self._redis_failed(f"{exc.__class__.__name__}: {exc}")
        return None

    async def leave(self) -> None:
        """A graceful stop (after the server's): stop renewing, then give the letters back
        now rather than after the TTL. Needs a client of its own (``run``'s is gone)."""
        self._running.cancel()
        with trio.CancelScope(shield=True):
            if self._stopped is not None:
                with trio.move_on_after(self.timeout):
                    await self._stopped.wait()
            if self.redis_up:
                released = None
                if self._client is not None:
                    released = await self._call(Registry(self._client).leave(self.me))
                else:
                    async with self._new_client() as client:
                        released = await self._call(Registry(client).leave(self.me))
                if released is not None:
                    log.info("cluster: left the cluster; %d letters released", released)
        self.expiries.clear()
        self._apply(trio.current_time())

    # --- the plan --------------------------------------------------------------------

    def _apply(self, now: float) -> None:
        creating = creating_letters(self.expiries, self.draining, now)
        lapsed = bool(self.expiries) and not creating_letters(self.expiries, "", now)
        if self.table is not None:
            self.server.hub.shard = plan_from(self.me, self.table, creating)
        else:
            self.server.hub.shard = empty_plan(self.me)
        if creating != self._creating:
            log.info("cluster: new rooms use letters %s", creating or "(none)")
            self._creating = creating
        if lapsed and not self.redis_up and not self._lapsed_logged:
            log.error("cluster: Redis at %s has not answered for a lease TTL (%g s): this member's letter "
                      "leases have lapsed, so JOIN HOST is answered 3 until Redis is back (games go on)",
                      self.settings.url, self.settings.lease_ttl)
            self._lapsed_logged = True

    def _redis_failed(self, why: str) -> None:
        if self.redis_up is not False:
            lasting = max((e for e in self.expiries.values()), default=trio.current_time()) - trio.current_time()
            log.error("cluster: Redis at %s unreachable (%s); new rooms go on using letters %s for %.1f s more "
                      "(until their leases would lapse), games are not affected", self.settings.url, why,
                      self.held or "(none)", max(0.0, lasting))
        self.redis_up = False
        self._rounds = 0

    def _redis_back(self) -> None:
        if self.redis_up is False:
            log.warning("cluster: Redis at %s answers again", self.settings.url)
        self.redis_up = True
        self._lapsed_logged = False

    def _directory(self) -> list[list]:
        """This member's rooms for ``lgmp rooms``: code, created (unix time), players, phase."""
        offset = time.time() - trio.current_time()  # the core's clock is trio's
        return [[view.code, round(view.opened_at + offset, 3), len(view.seats), view.phase]
                for view in self.views.rooms.values()]
