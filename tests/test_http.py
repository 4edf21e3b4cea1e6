"""The HTTP side against a real server in this process, over real sockets: the room
API matches what the players were sent, counters move, DELETE needs the token, bad
input gets 400/404, results are served, pages render, spectators get live updates
within their limits, and a spectator that never reads does not slow its room.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from lgmp.clients.bot import BotBrain, play_bot
from lgmp.clients.client import LGMPClient
from lgmp.http.service import HTTPService, HTTPSettings
from lgmp.http.spectators import UPDATE_INTERVAL
from lgmp.limits import Limits
from lgmp.results.store import ResultsStore
from lgmp.server.shell import LGMPServer
from lgmp.wire.packets import CardDealt, GameUpdate, ReadyResponse, Reset, Spin, StartGame

from .conftest import TEST_LIMITS, Net, recv, until_closed

TIMEOUT = 10.0


@dataclass
class Site:
    net: Net
    http: HTTPService
    client: httpx.AsyncClient

    @property
    def server(self) -> LGMPServer:
        return self.net.server

    async def metrics(self) -> dict[tuple[str, frozenset], float]:
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text) for s in family.samples}

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, frozenset(labels.items())), 0.0)

    async def wait_metric(self, name: str, at_least: float, **labels: str) -> float:
        with trio.fail_after(TIMEOUT):
            while (value := await self.metric(name, **labels)) < at_least:
                await trio.sleep(0.02)
        return value


@pytest.fixture
async def site(nursery):
    sites: list[Site] = []

    async def start(*, limits: Limits = TEST_LIMITS, token: str | None = None, results_path: str | None = None,
                    on_game_finished=None, interval: float = UPDATE_INTERVAL) -> Site:
        server = LGMPServer(limits=limits, seed=1, on_game_finished=on_game_finished)
        http = HTTPService(server, HTTPSettings(port=0, admin_token=token, results_path=results_path,
                                                update_interval=interval))
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        await nursery.start(http.serve)
        s = Site(Net(server, port), http, httpx.AsyncClient(base_url=http.url, timeout=TIMEOUT))
        sites.append(s)
        return s

    yield start
    for s in sites:
        await s.client.aclose()
        with trio.move_on_after(5):
            await s.server.shutdown()
            await s.http.shutdown()
        await s.net.aclose()


async def last_of(client: LGMPClient, kind: type, wait: float = 0.1):
    """The latest packet of ``kind`` among what arrives within ``wait`` of quiet."""
    found = None
    while True:
        with trio.move_on_after(wait):
            packet = await client.receive()
            if isinstance(packet, kind):
                found = packet
            continue
        return found


# --- the room API ---------------------------------------------------------------------------


async def test_room_api_matches_what_the_players_were_sent(site):
    s = await site()
    started = trio.current_time()
    host, code = await s.net.host()
    ann = await s.net.player(code, "Ann", 3)
    bob = await s.net.player(code, "Bob", 5)
    lurker = await s.net.client()
    await lurker.join(code)  # seated, never ready
    avatars = (await last_of(host, ReadyResponse)).avatars

    listed = (await s.client.get("/api/rooms")).json()["rooms"]
    assert [r["code"] for r in listed] == [code]
    room = (await s.client.get(f"/api/rooms/{code.lower()}")).json()  # codes match in any case, as JOIN does
    assert room["code"] == code and room["phase"] == "lobby" and room["turn"] is None
    assert {k: v for k, v in listed[0].items() if k != "seats"} == {k: room[k] for k in listed[0] if k != "seats"}
    assert listed[0]["seats"] == [{k: seat[k] for k in listed[0]["seats"][0]} for seat in room["seats"]]
    assert [seat["avatar"] for seat in room["seats"]] == [a for a in avatars if a] + [0]
    seats = {seat["seat"]: seat for seat in room["seats"]}
    assert (seats[ann.seat]["name"], seats[ann.seat]["avatar_name"], seats[ann.seat]["ready"]) == ("Ann", "Green", True)
    assert (seats[bob.seat]["name"], seats[bob.seat]["avatar"], seats[bob.seat]["ready"]) == ("Bob", 5, True)
    assert [seat["ready"] for seat in room["seats"]] == [True, True, False]
    assert not any(seat["absent"] for seat in room["seats"])
    assert abs(room["created_unix"] - time.time()) < trio.current_time() - started + 2
    assert room["created"].endswith("Z")

    await lurker.aclose()
    await last_of(host, ReadyResponse)
    await host.send(StartGame())
    game = await host.wait_for(GameUpdate)
    room = (await s.client.get(f"/api/rooms/{code}")).json()
    assert room["phase"] == "game" and room["turn"] == game.turn and len(room["seats"]) == 2

    mover = ann if game.turn == ann.seat else bob
    await mover.send(Spin(4))  # space 4 is a Career Point: a card is dealt and waits for the mover
    game = await host.wait_for(GameUpdate)
    card = await host.wait_for(CardDealt)
    room = (await s.client.get(f"/api/rooms/{code}")).json()
    occupied = Counter({space: n for space, n in enumerate(game.occupancy) if n})
    assert Counter(seat["space"] for seat in room["seats"]) == occupied
    assert room["turn"] == game.turn and room["space"] == game.space
    assert (room["card"]["kind"], room["card"]["number"]) == (card.kind, card.number)
    assert room["card"]["awaiting"] == [mover.seat] and room["card"]["title"].startswith("Career Point #")

    other = bob if mover is ann else ann
    await other.aclose()
    with trio.fail_after(TIMEOUT):
        while not (room := (await s.client.get(f"/api/rooms/{code}")).json())["seats"][other.seat - 1]["absent"]:
            await trio.sleep(0.02)
    assert [seat["absent"] for seat in room["seats"]] == [seat["seat"] == other.seat for seat in room["seats"]]


async def test_bad_codes_are_400_and_unknown_rooms_404(site):
    s = await site(token="sesame")
    for path in ("/api/rooms/AB", "/api/rooms/ABCDE", "/api/rooms/AB1D", "/rooms/ab-d", "/rooms/%C3%A9%C3%A9%C3%A9%C3%A9/events"):
        response = await s.client.get(path)
        assert response.status_code == 400, path
    assert (await s.client.delete("/api/rooms/A1CD", headers={"Authorization": "Bearer sesame"})).status_code == 400
    for path in ("/api/rooms/QQQQ", "/rooms/QQQQ", "/rooms/QQQQ/events", "/api/nothing", "/api/results/1"):
        response = await s.client.get(path)
        assert response.status_code in (404, 503) if path == "/api/results/1" else response.status_code == 404, path
    assert (await s.client.delete("/api/rooms/QQQQ", headers={"Authorization": "Bearer sesame"})).status_code == 404
    assert "error" in (await s.client.get("/api/rooms/QQQQ")).json()


# --- closing a room ---------------------------------------------------------------------------


async def test_delete_needs_a_configured_token(site):
    s = await site()  # no admin token
    host, code = await s.net.host()
    response = await s.client.delete(f"/api/rooms/{code}", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert (await s.client.get(f"/api/rooms/{code}")).status_code == 200


async def test_delete_without_a_wrong_and_with_the_right_token(site):
    s = await site(token="s3cret-token")
    host, code = await s.net.host()
    ann = await s.net.player(code, "Ann", 1)
    bob = await s.net.player(code, "Bob", 2)
    await host.send(StartGame())
    await ann.wait_for(GameUpdate)

    assert (await s.client.delete(f"/api/rooms/{code}")).status_code == 401
    wrong = await s.client.delete(f"/api/rooms/{code}", headers={"Authorization": "Bearer s3cret-tokeN"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert (await s.client.delete(f"/api/rooms/{code}", headers={"Authorization": "Basic s3cret-token"})).status_code == 401
    assert (await s.client.get(f"/api/rooms/{code}")).json()["phase"] == "game"

    before = await s.metric("lgmp_connections_closed_total", reason="operator")
    right = await s.client.delete(f"/api/rooms/{code}", headers={"Authorization": "Bearer s3cret-token"})
    assert right.status_code == 200 and right.json() == {"closed": code}
    for member in (host, ann, bob):  # like a host leaving: RSET to every member, then closed
        seen = await until_closed(member)
        assert seen[-1] == Reset()
    assert (await s.client.get(f"/api/rooms/{code}")).status_code == 404
    assert (await s.client.get("/api/rooms")).json()["rooms"] == []
    assert await s.wait_metric("lgmp_connections_closed_total", before + 3, reason="operator") == before + 3


# --- metrics ------------------------------------------------------------------------------------


async def test_counters_move_as_games_run(site, tmp_path):
    stored = []
    s = await site(on_game_finished=lambda game, started, ended: stored.append(game.room))
    m0 = await s.metrics()

    def delta(after: dict, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - m0.get(key, 0.0)

    # A connection that sends bytes that are not LGMP is closed for bad bytes.
    garbage = await trio.open_tcp_stream("127.0.0.1", s.net.port)
    await garbage.send_all(b"GET / HTTP/1.1\r\n\r\n")
    await s.wait_metric("lgmp_connections_closed_total", m0.get(("lgmp_connections_closed_total", frozenset({("reason", "bad_bytes")})), 0) + 1, reason="bad_bytes")
    await garbage.aclose()
    # A SPIN before JOIN is ignored (a strike).
    early = await s.net.client()
    await early.send(Spin(3))
    await s.wait_metric("lgmp_packets_ignored_total", 1, reason="before_join")

    host, code = await s.net.host()
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(lambda i=i: play_bot("127.0.0.1", s.net.port, code, name=f"Bot{i}", seed=i))
        with trio.fail_after(TIMEOUT):
            while len((await s.client.get(f"/api/rooms/{code}")).json()["seats"]) < 3 or \
                    not all(seat["ready"] for seat in (await s.client.get(f"/api/rooms/{code}")).json()["seats"]):
                await trio.sleep(0.02)
        assert await s.metric("lgmp_players", state="present") == 3
        await host.send(StartGame())
    assert stored == [code]
    after = await s.metrics()
    assert delta(after, "lgmp_games_started_total") == 1 and delta(after, "lgmp_games_finished_total") == 1
    spins = delta(after, "lgmp_packets_received_total", tag="SPIN")
    assert spins >= 10  # a 3-player game is tens of turns
    assert delta(after, "lgmp_spin_handling_seconds_count") == spins
    assert delta(after, "lgmp_spin_handling_seconds_bucket", le="+Inf") == spins
    assert delta(after, "lgmp_packets_sent_total", tag="GAME") >= spins * 4  # host + 3 players each GAME
    assert delta(after, "lgmp_packets_sent_total", tag="FINL") == 4 and delta(after, "lgmp_packets_received_total", tag="CRER") == 3
    assert delta(after, "lgmp_results_commit_seconds_count") == 1
    assert delta(after, "lgmp_connections_opened_total") == 2 + 1 + 3  # garbage, early, host, 3 bots
    assert after[("lgmp_rooms", frozenset({("phase", "lobby")}))] == 1
    assert after[("lgmp_connections_open", frozenset())] == s.server.open_connections
    assert after[("lgmp_relayed_connections", frozenset())] == 0
    assert ("process_cpu_seconds_total", frozenset()) in after


async def test_two_servers_in_one_process_have_their_own_figures(site):
    a, b = await site(), await site()
    await a.net.host()
    assert await a.wait_metric("lgmp_rooms", 1, phase="lobby") == 1
    assert await b.metric("lgmp_rooms", phase="lobby") == 0
    assert await b.metric("lgmp_connections_opened_total") == 0


# --- results ------------------------------------------------------------------------------------


async def test_results_api_and_page(site, tmp_path):
    path = str(tmp_path / "results.sqlite3")
    store = ResultsStore.open(path)

    def record(game, started, ended):
        store.record_game(room=game.room, seed=game.seed, record=game.record, started=started, ended=ended)

    s = await site(results_path=path, on_game_finished=record)
    try:
        host, code = await s.net.host()
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(lambda i=i: play_bot("127.0.0.1", s.net.port, code, name=f"Bot{i}", seed=i))
            with trio.fail_after(5):
                while sum(1 for a in host.avatars if a) < 2:  # both bots ready
                    await host.receive()
            await host.send(StartGame())
        listed = (await s.client.get("/api/results")).json()
        assert listed["total"] == 1 and len(listed["games"]) == 1
        game = listed["games"][0]
        assert game["room"] == code and game["players"] == 2 and game["winner"] in ("Bot0", "Bot1")
        one = (await s.client.get(f"/api/results/{game['id']}")).json()
        assert sorted(p["name"] for p in one["players"]) == ["Bot0", "Bot1"]
        assert sorted(p["place"] for p in one["players"]) == [1, 2]
        assert all(p["career"] and p["salary"] > 0 for p in one["players"])
        assert (await s.client.get("/api/results/999")).status_code == 404
        assert (await s.client.get("/api/results/x1")).status_code == 400
        assert (await s.client.get("/api/results?limit=0")).status_code == 400
        assert (await s.client.get("/api/results?limit=many")).status_code == 400
        page = await s.client.get("/results")
        assert page.status_code == 200 and "Most wins" in page.text and game["winner"] in page.text
        assert page.text.count("<svg") >= 5  # careers, fields, durations, salaries, salary by place
    finally:
        store.close()


async def test_results_without_a_store(site):
    s = await site()
    assert (await s.client.get("/api/results")).status_code == 503
    page = await s.client.get("/results")
    assert page.status_code == 200 and "--no-db" in page.text


# --- pages ------------------------------------------------------------------------------------------


async def test_pages_render_and_need_nothing_from_elsewhere(site):
    s = await site()
    host, code = await s.net.host()
    await s.net.player(code, "Ann", 4)
    overview = await s.client.get("/")
    assert overview.status_code == 200 and f'href="/rooms/{code}"' in overview.text and "Ann" in overview.text
    assert "<svg" in overview.text  # the activity chart
    assert "Ann" in (await s.client.get("/overview/live")).text
    room = await s.client.get(f"/rooms/{code}")
    assert room.status_code == 200 and room.text.count('class="space ') == 56
    assert "Join with code" in room.text and code in room.text
    for page in (overview.text, room.text):  # no CDN: every script and stylesheet is ours
        assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    for asset in ("/static/style.css", "/static/room.js", "/static/overview.js"):
        assert (await s.client.get(asset)).status_code == 200
    assert (await s.client.get("/rooms/QQQQ")).status_code == 404


# --- spectators ---------------------------------------------------------------------------------------


class EventReader:
    """Reads an SSE response's (event, data) pairs, one stream iterator throughout."""

    def __init__(self, response: httpx.Response):
        self.lines = response.aiter_lines()

    async def until(self, event: str, limit: int = 1000) -> list[tuple[str, str]]:
        """Pairs up to and including the first ``event`` (or ``limit`` pairs)."""
        events, name = [], None
        async for line in self.lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, line[6:]))
                if name == event or len(events) >= limit:
                    return events
        return events


async def test_a_spectator_sees_the_game_move_and_the_room_close(site):
    s = await site(interval=0.01)
    host, code = await s.net.host()
    ann = await s.net.player(code, "Ann", 2)
    async with s.client.stream("GET", f"/rooms/{code}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        first = await reader.until("room", limit=1)
        assert first[0][0] == "room" and "Ann" in first[0][1]
        assert await s.metric("lgmp_spectators") == 1
        await host.send(StartGame())
        await ann.wait_for(GameUpdate)
        await ann.send(Spin(3))
        await ann.wait_for(GameUpdate)
        with trio.fail_after(TIMEOUT):
            while True:
                name, data = (await reader.until("room", limit=1))[0]
                if 'data-space=\\"3\\"' in data:
                    break  # the piece stands on space 3
        await host.aclose()  # the host leaves: the room ends
        with trio.fail_after(TIMEOUT):
            events = await reader.until("closed")
        assert events[-1] == ("closed", '{"reason":"the host left"}')
    with trio.fail_after(TIMEOUT):
        while await s.metric("lgmp_spectators") != 0:
            await trio.sleep(0.02)


async def test_viewer_limits_refuse_with_503(site):
    s = await site(limits=dataclasses.replace(TEST_LIMITS, max_viewers_per_room=1, max_viewers=2))
    _, one = await s.net.host()
    _, two = await s.net.host()
    _, three = await s.net.host()
    async with s.client.stream("GET", f"/rooms/{one}/events") as first:
        assert first.status_code == 200
        refused = await s.client.get(f"/rooms/{one}/events")
        assert refused.status_code == 503 and "room full" in refused.json()["error"]
        async with s.client.stream("GET", f"/rooms/{two}/events") as second:
            assert second.status_code == 200
            over = await s.client.get(f"/rooms/{three}/events")
            assert over.status_code == 503 and "server full" in over.json()["error"]
    assert await s.metric("lgmp_spectators_refused_total", reason="room_full") == 1
    assert await s.metric("lgmp_spectators_refused_total", reason="server_full") == 1


async def test_a_viewer_that_never_reads_does_not_delay_the_rooms_game_packets(site):
    s = await site(limits=dataclasses.replace(TEST_LIMITS, viewer_queue=2), interval=0.0)  # an update per batch: as much for the viewer as can be
    host, code = await s.net.host()
    ann = await s.net.player(code, "Ann", 1)
    bob = await s.net.player(code, "Bob", 2)
    # The spectator asks for the stream and never reads a byte of it, with a tiny receive buffer.
    sleeper = socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sleeper.connect(("127.0.0.1", s.http.port))
    sleeper.sendall(f"GET /rooms/{code}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    with trio.fail_after(TIMEOUT):
        while await s.metric("lgmp_spectators") < 1:
            await trio.sleep(0.01)

    delays: list[float] = []

    async def play(client: LGMPClient) -> None:
        """Play like a bot until the game's RSET, timing each SPIN to the GAME it brings."""
        brain, spun_at = BotBrain(client.seat, random.Random(client.seat)), None
        while not isinstance(packet := await recv(client), Reset):
            if isinstance(packet, GameUpdate) and spun_at is not None:
                delays.append(trio.current_time() - spun_at)
                spun_at = None
            for reply in brain.react(packet):
                if isinstance(reply, Spin):
                    spun_at = trio.current_time()
                await client.send(reply)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(play, ann)
            nursery.start_soon(play, bob)
            await host.send(StartGame())
    assert len(delays) >= 10
    assert max(delays) < 0.5, delays  # a stalled viewer would hold them for good
    # Its socket and its queue filled up long before the game ended: it was dropped.
    assert await s.wait_metric("lgmp_spectators_dropped_total", 1) == 1
    assert await s.metric("lgmp_spectators") == 0
    sleeper.close()
