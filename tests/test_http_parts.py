"""The HTTP side's pure parts: shell counters and close kinds, closing a room in the hub,
the room view's roster, board geometry, charts, activity, JSON shapes, metric
labels, and the spectators' queues, limits and drops (with a fake renderer)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import trio

from lgmp.game.rules import BOARD, BOARD_SIZE, SpaceKind
from lgmp.http import plots
from lgmp.http.activity import BUCKET_SECONDS, BUCKETS, Activity
from lgmp.http.api import parse_room_code, room_json
from lgmp.http.board import space_centre, space_origin, CELL_W, CELL_H, pieces_svg, board_svg
from lgmp.http.metrics import IGNORE_LABELS, PACKET_TAGS, ignore_kind
from lgmp.http.metrics import SpectatorCounts
from lgmp.http.spectators import Refused, Spectators
from lgmp.limits import Limits
from lgmp.rooms.events import (
    CloseMember, Deliver, GameOver, GameStarted, PieceMoved, PlayerJoined, PlayerReady, RoomClosed, RoomOpened, SeatFreed,
)
from lgmp.rooms.hub import Hub
from lgmp.rooms.view import RoomViews
from lgmp.server.stats import CLOSE_LABELS, Histogram, ShellStats, close_kind
from lgmp.wire.packets import JoinRequest, ReadyRequest, Reset, Spin, StartGame


# --- shell counters -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason, label", [
    ("packet flood", "flood"),
    ("too many ignored packets (last: SPIN before JOIN)", "strikes"),
    ("bad bytes: unknown tag for c2s b'GET ' at offset 0", "bad_bytes"),
    ("packet not completed within 10 s", "packet_timeout"),
    ("no JOIN in time", "join_timeout"),
    ("send queue full (256 packets)", "send_queue"),
    ("peer closed", "peer_closed"), ("peer closed inside a packet", "peer_closed"),
    ("read failed: OSError", "read_failed"), ("write failed: BrokenPipeError", "write_failed"),
    ("the host left", "host_left"), ("every player left", "room_empty"),
    ("the lobby was idle too long", "lobby_idle"),
    ("the game ended before the seat was reclaimed", "rejoin_expired"),
    ("closed by an operator", "operator"), ("the server is shutting down", "shutdown"),
    ("closed by the server", "shutdown"), ("internal error", "internal_error"),
    ("something new", "other"), (None, "other"),
])
def test_close_reasons_fold_into_a_fixed_set_of_labels(reason, label):
    assert close_kind(reason) == label and label in CLOSE_LABELS


def test_histograms_count_per_bucket_and_add_up():
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0):
        h.observe(value)
    assert h.cumulative() == [(0.1, 2), (1.0, 3), (float("inf"), 4)] and h.count == 4
    assert h.sum == pytest.approx(2.65)
    a, b = ShellStats(), ShellStats()
    a.opened, b.opened = 2, 3
    a.received[Spin] += 4
    b.received[Spin] += 1
    b.connection_closed("packet flood")
    b.spin_seconds.observe(0.001)
    a.merge(b)
    assert (a.opened, a.received[Spin], a.closed["flood"], a.spin_seconds.count) == (5, 5, 1, 1)
    with pytest.raises(ValueError):
        Histogram((1.0,)).merge(Histogram((2.0,)))


# --- closing a room in the core ----------------------------------------------------------------------


def test_close_room_is_a_host_leaving_with_the_host_sent_rset_too():
    hub = Hub(seed=1)
    host = hub.connect(0.0)
    code = hub.receive(host, JoinRequest("HOST"), 0.0)[-1].packet.room
    players = []
    for n in (1, 2):
        member = hub.connect(0.0)
        hub.receive(member, JoinRequest(code), 0.0)
        hub.receive(member, ReadyRequest(f"P{n}", n), 0.0)
        players.append(member)
    hub.receive(host, StartGame(), 0.0)
    assert hub.close_room("nope", "closed by an operator") == []
    events = hub.close_room(code.lower(), "closed by an operator")
    assert events[0] == Deliver((host, *players), Reset())
    assert [e for e in events if isinstance(e, CloseMember)] == [CloseMember(m, "closed by an operator") for m in (host, *players)]
    assert events[-1] == RoomClosed(code, "closed by an operator")
    assert code not in hub.rooms and hub.connection_count == 0
    assert hub.receive(players[0], Spin(3), 1.0) == []  # detached: late packets are dropped
    assert hub.close_room(code, "again") == []


# --- the room view's additions ------------------------------------------------------------------------


def test_the_roster_names_a_seat_freed_at_the_games_end():
    views = RoomViews()
    views.apply([RoomOpened("ABCD", 1, 0.0), PlayerJoined("ABCD", 1, 2), PlayerReady("ABCD", 1, "Ann", 3),
                 PlayerJoined("ABCD", 2, 3), PlayerReady("ABCD", 2, "Bob", 4),
                 GameStarted("ABCD", ((1, "Ann", 3), (2, "Bob", 4)), 1, 7),
                 PieceMoved("ABCD", 1, 0, 4, False, 4)])
    view = views.rooms["ABCD"]
    assert view.last_move == PieceMoved("ABCD", 1, 0, 4, False, 4)
    views.apply([GameOver("ABCD", ((1, 1, "Media Planner", 54000), (2, 2, "Sales Manager", 74750)), 9.0), SeatFreed("ABCD", 2)])
    assert 2 not in view.seats
    assert (view.name_of(2), view.avatar_of(2), view.name_of(1)) == ("Bob", 4, "Ann")
    detail = room_json(view, 1000.0, detail=True)
    assert [(s["seat"], s["name"], s["place"]) for s in detail["standings"]] == [(1, "Ann", 1), (2, "Bob", 2)]
    views.apply([GameStarted("ABCD", ((1, "Ann", 3),), 1, 8)])
    assert view.last_move is None and view.roster == {1: ("Ann", 3)}


# --- words and pictures ---------------------------------------------------------------------------


def test_the_board_is_a_snake_of_56_cells_that_never_overlap():
    origins = [space_origin(s) for s in range(BOARD_SIZE)]
    assert len(set(origins)) == BOARD_SIZE
    for a, b in zip(range(BOARD_SIZE - 1), range(1, BOARD_SIZE)):  # each space beside the next
        (ax, ay), (bx, by) = space_centre(a), space_centre(b)
        assert (abs(ax - bx) < CELL_W * 1.5 and ay == by) or (ax == bx and abs(ay - by) < CELL_H * 1.5)
    svg = board_svg()
    assert svg.count('class="space ') == BOARD_SIZE
    assert svg.count(f'class="space kind-{int(SpaceKind.FINISH)}"') == 1 == BOARD.count(SpaceKind.FINISH)


def test_pieces_sharing_a_space_stand_apart_and_names_are_escaped():
    svg = pieces_svg([(1, 1, 10, "<b>", True), (2, 2, 10, "Bo", False), (3, 3, 99, "Cy", True)])
    assert svg.count('data-space="10"') == 2 and 'data-space="55"' in svg  # off the board: clamped to the finish
    assert "<b>" not in svg and "&lt;b&gt;" in svg and 'class="piece away"' in svg
    transforms = [part.split('"')[0] for part in svg.split('transform="translate(')[1:]]
    assert len(set(transforms)) == 3


def test_charts_draw_a_bar_per_item_and_escape_labels():
    chart = plots.bar_chart([("<x>", 3, "#111"), ("y", 1, None)])
    assert chart.count("<rect") == 2 and "&lt;x&gt;" in chart and "<x>" not in chart
    assert plots.histogram([1, 2, 2, 3, 10], bins=3).count("<rect") == 3
    assert "no data yet" in plots.histogram([]) and "no data yet" in plots.bar_chart([])
    assert plots._nice_ceiling(7) == 10 and plots._nice_ceiling(130) == 200 and plots._nice_ceiling(1) == 1


def test_activity_buckets_the_last_ten_minutes():
    activity = Activity()
    activity.observe([PieceMoved("ABCD", 1, 0, 3, False, 3), PieceMoved("ABCD", 1, 3, 1, True)], 5.0)
    activity.observe([GameOver("ABCD", (), 1.0)], 65.0)
    recent = activity.recent(70.0)
    assert len(recent) == BUCKETS and recent[-1].start == 70.0 - 70.0 % BUCKET_SECONDS
    assert sum(b.moves for b in recent) == 1 and sum(b.games_finished for b in recent) == 1
    assert activity.games_per_minute(70.0) == pytest.approx(1 / 5)
    assert sum(b.moves for b in activity.recent(70.0 + BUCKETS * BUCKET_SECONDS)) == 0


def test_room_codes_and_metric_labels():
    assert parse_room_code("abcd") == "ABCD" and parse_room_code("ABC") is None and parse_room_code("AB1D") is None
    assert parse_room_code("ÄBCD") is None
    assert ignore_kind("Spin before JOIN") == "before_join" and ignore_kind("a second JOIN") == "second_join"
    assert ignore_kind("Spin from the host is not allowed in the lobby") == "not_allowed_now"
    assert ignore_kind("it is seat 2's turn, not seat 1's") == "not_your_turn"
    assert ignore_kind("a spin must be 1-6, got 9") == "refused_by_rules" and set(IGNORE_LABELS) >= {"refused_by_rules"}
    assert sorted(PACKET_TAGS[t] for t in (JoinRequest, Spin, Reset)) == ["JOIN", "RSET", "SPIN"]


# --- spectators --------------------------------------------------------------------------------------


def make_spectators(**limits) -> tuple[Spectators, SpectatorCounts, list]:
    rendered = []

    def render(code: str, whole: bool):
        if code == "GONE":
            return None
        rendered.append((code, whole))
        return f"{code}:{len(rendered)}".encode()

    counts = SpectatorCounts()
    return Spectators(Limits(**limits), counts, render, interval=0.0), counts, rendered


async def test_a_viewer_starts_with_the_room_and_gets_each_change_once():
    spectators, counts, rendered = make_spectators()
    assert spectators.join("GONE") is None and spectators.total == 0
    viewer = spectators.join("ABCD")
    assert viewer.receive.receive_nowait() == b"ABCD:1" and rendered == [("ABCD", True)]
    spectators.observe([PieceMoved("ABCD", 1, 0, 3, False, 3), PieceMoved("WXYZ", 1, 0, 3, False, 3)])
    spectators.publish("ABCD")
    assert rendered[-1] == ("ABCD", True)  # it joined since the last update: a whole one, this once
    spectators.publish("ABCD")
    assert rendered[-1] == ("ABCD", False)
    assert [viewer.receive.receive_nowait() for _ in range(2)] == [b"ABCD:2", b"ABCD:3"]
    spectators.observe([RoomClosed("ABCD", "the host left")])
    closed = viewer.receive.receive_nowait()
    assert json.loads(closed.split(b"data: ")[1]) == {"reason": "the host left"} and closed.startswith(b"event: closed")
    with pytest.raises(trio.EndOfChannel):
        viewer.receive.receive_nowait()
    assert spectators.total == 0 and spectators.rooms == {}


async def test_the_publisher_coalesces_changes():
    spectators, counts, rendered = make_spectators()
    viewer = spectators.join("ABCD")
    async with trio.open_nursery() as nursery:
        await nursery.start(spectators.run)
        for _ in range(50):
            spectators.observe([PieceMoved("ABCD", 1, 0, 3, False, 3)])
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert len(rendered) == 2  # the join, and one update for fifty changes


async def test_a_full_queue_drops_its_viewer_and_limits_refuse():
    spectators, counts, rendered = make_spectators(viewer_queue=2, max_viewers_per_room=2, max_viewers=3)
    slow, quick = spectators.join("ABCD"), spectators.join("ABCD")
    with pytest.raises(Refused) as refused:
        spectators.join("ABCD")
    assert refused.value.reason == "room_full"
    spectators.join("WXYZ")
    with pytest.raises(Refused) as refused:
        spectators.join("QQQQ")
    assert refused.value.reason == "server_full" and counts.refused == {"room_full": 1, "server_full": 1}
    for _ in range(3):  # the quick one reads each update; the slow one never does
        quick.receive.receive_nowait()
        spectators.publish("ABCD")
    assert slow.dropped and slow.cancel_scope.cancel_called and not quick.dropped
    assert counts.dropped == 1 and spectators.total == 2 and spectators.rooms["ABCD"] == {quick}
