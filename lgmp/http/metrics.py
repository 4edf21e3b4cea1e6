"""Prometheus metrics for one server: figures from the shell's counters, the core's
events and the live room views, exposed in Prometheus' text format at ``/metrics``.

Nothing here runs per packet: the shell keeps plain counters (``ShellStats``),
``EventCounts`` counts the few events that matter as they are watched, and the
``LGMPCollector`` turns both, plus what the room views show now, into metric families
only when scraped. Each server has its own ``CollectorRegistry``, so tests can run
several servers in one process. Names follow Prometheus' conventions: an
``lgmp_`` prefix, ``_total`` counters, seconds.

Label values come from small fixed sets (close and ignore reasons are folded into
kinds), so no peer can grow the label space.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..rooms.events import GameOver, GameStarted, PacketIgnored
from ..server.stats import CLIENT_PACKETS, CLOSE_LABELS, SERVER_PACKETS, Histogram, ShellStats
from ..wire.codec import tag_of

#: Why a well-formed packet was ignored, as labels: the first matching fragment names it.
IGNORE_KINDS: tuple[tuple[str, str], ...] = (
    ("before JOIN", "before_join"),
    ("a second JOIN", "second_join"),
    ("is not allowed in the", "not_allowed_now"),
    ("'s turn, not seat", "not_your_turn"),
)
IGNORE_LABELS: tuple[str, ...] = tuple(label for _, label in IGNORE_KINDS) + ("refused_by_rules",)


def ignore_kind(reason: str) -> str:
    for fragment, label in IGNORE_KINDS:
        if fragment in reason:
            return label
    return "refused_by_rules"  # the game's rules refused the move (a card, a career, a spin)


def _packet_tags() -> dict[type, str]:
    """Each packet class's 4-letter tag, as the codec declares it."""
    return {t: tag_of(t) for t in (*CLIENT_PACKETS, *SERVER_PACKETS)}


PACKET_TAGS = _packet_tags()


@dataclass(slots=True)
class EventCounts:
    """Counters kept from the core's events (the watcher calls ``observe`` per batch)."""

    games_started: int = 0
    games_finished: int = 0
    ignored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IGNORE_LABELS, 0))

    def observe(self, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is GameStarted:
                self.games_started += 1
            elif kind is GameOver:
                self.games_finished += 1
            elif kind is PacketIgnored:
                self.ignored[ignore_kind(event.reason)] += 1


@dataclass(frozen=True, slots=True)
class Gauges:
    """What is true now, read at scrape time."""

    connections: int
    rooms: dict[str, int]  # phase -> rooms
    players: dict[str, int]  # "present" / "absent" -> seated players
    spectators: int
    relayed: int = 0  # connections relayed to another node (a cluster); 0 on a lone server


@dataclass(slots=True)
class SpectatorCounts:
    refused: dict[str, int] = field(default_factory=lambda: {"room_full": 0, "server_full": 0})
    dropped: int = 0  # viewers whose queue filled up


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets = [("+Inf" if bound == float("inf") else repr(bound), n) for bound, n in h.cumulative()]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.sum)


class LGMPCollector(Collector):
    """Every lgmp_ metric of one server, made at scrape time."""

    def __init__(self, stats: ShellStats, counts: EventCounts, spectators: SpectatorCounts, gauges: Callable[[], Gauges]):
        self.stats, self.counts, self.spectators, self.gauges = stats, counts, spectators, gauges

    def collect(self) -> Iterator[Metric]:
        stats, counts, now = self.stats, self.counts, self.gauges()
        yield GaugeMetricFamily("lgmp_connections_open", "LGMP connections the server holds now", value=now.connections)
        yield CounterMetricFamily("lgmp_connections_opened", "LGMP connections accepted", value=stats.opened)
        closed = CounterMetricFamily("lgmp_connections_closed", "LGMP connections closed, by reason", labels=["reason"])
        for reason in CLOSE_LABELS:
            closed.add_metric([reason], stats.closed.get(reason, 0))
        yield closed
        rooms = GaugeMetricFamily("lgmp_rooms", "rooms open now, by phase", labels=["phase"])
        for phase in ("lobby", "game"):
            rooms.add_metric([phase], now.rooms.get(phase, 0))
        yield rooms
        players = GaugeMetricFamily("lgmp_players", "seated players now; absent ones left mid-game and are played by the server", labels=["state"])
        for state in ("present", "absent"):
            players.add_metric([state], now.players.get(state, 0))
        yield players
        yield CounterMetricFamily("lgmp_games_started", "games started", value=counts.games_started)
        yield CounterMetricFamily("lgmp_games_finished", "games finished (every player chose a career)", value=counts.games_finished)
        for name, doc, table in (
            ("lgmp_packets_received", "packets received from clients, by tag", stats.received),
            ("lgmp_packets_sent", "packets queued to clients, by tag", stats.sent),
        ):
            family = CounterMetricFamily(name, doc, labels=["tag"])
            by_tag: dict[str, int] = {}
            for kind, n in table.items():  # a tag may have a class per dialect (REDY, JOIN, GAME)
                tag = PACKET_TAGS.get(kind, kind.__name__)
                by_tag[tag] = by_tag.get(tag, 0) + n
            for tag, n in by_tag.items():
                family.add_metric([tag], n)
            yield family
        ignored = CounterMetricFamily("lgmp_packets_ignored", "well-formed packets not allowed when sent (a strike each), by reason", labels=["reason"])
        for reason in IGNORE_LABELS:
            ignored.add_metric([reason], counts.ignored.get(reason, 0))
        yield ignored
        yield _histogram("lgmp_spin_handling_seconds", "time from a SPIN read to its GAME written to the sockets", stats.spin_seconds)
        yield _histogram("lgmp_results_commit_seconds", "time to commit a finished game to the results store", stats.commit_seconds)
        yield GaugeMetricFamily("lgmp_relayed_connections", "connections relayed to another node of a cluster", value=now.relayed)
        yield GaugeMetricFamily("lgmp_spectators", "live spectator streams open now", value=now.spectators)
        refused = CounterMetricFamily("lgmp_spectators_refused", "spectator streams refused at a viewer limit, by limit", labels=["reason"])
        for reason, n in self.spectators.refused.items():
            refused.add_metric([reason], n)
        yield refused
        yield CounterMetricFamily("lgmp_spectators_dropped", "spectator streams dropped because their queue filled up", value=self.spectators.dropped)


def make_registry(collector: LGMPCollector, *, process: bool = True) -> CollectorRegistry:
    """A registry of its own for one server: its lgmp_ metrics and the process' CPU and memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)
    return registry
