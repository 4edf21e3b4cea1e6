"""What a person sees: the host's board screen as text, and ``lgmp demo``.

``BoardView`` is pure: fed the packets a host receives, it keeps the board (who
is where, whose turn) and returns lines describing each event. The host never
learns player names from LGMP -- only avatars by seat -- so players are shown
by their avatar colour. Positions are tracked from GAME's occupancy: each GAME
moves at most one piece, the one whose turn it was.
"""

from __future__ import annotations

import math
import sys

import trio

from .client import ConnectionClosed, LGMPClient
from ..wire.packets import CardDealt, FinalResults, GameUpdate, ReadyResponse, Reset, ServerPacket, StartGame
from ..game.rules import (
    AVATAR_NAMES,
    BOARD,
    BRAND_CRISIS_DECK,
    CAREER_POINT_DECK,
    DID_YOU_KNOW_DECK,
    FIELD_NAMES,
    FINISH_SPACE,
    YOURE_THE_BOSS_DECK,
    Avatar,
    SpaceKind,
)

KIND_NAMES = {
    SpaceKind.PLAIN: "plain",
    SpaceKind.BRAND_CRISIS: "Brand Crisis",
    SpaceKind.CAREER_POINT: "Career Point",
    SpaceKind.YOURE_THE_BOSS: "You're the Boss",
    SpaceKind.DID_YOU_KNOW: "Did You Know",
    SpaceKind.FINISH: "Finish",
}
_KIND_SYMBOL = {SpaceKind.PLAIN: "·", SpaceKind.BRAND_CRISIS: "!", SpaceKind.CAREER_POINT: "C",
                SpaceKind.YOURE_THE_BOSS: "Y", SpaceKind.DID_YOU_KNOW: "?", SpaceKind.FINISH: "F"}
FINISH_CARD_TEXT = {1: "first to finish", 2: "finished", 3: "last to finish"}


def describe_card(kind: int, number: int) -> str:
    """A card as a person reads it: deck, number and what it does."""
    try:
        if kind == SpaceKind.BRAND_CRISIS:
            return f"Brand Crisis #{number}: move back {-BRAND_CRISIS_DECK[number - 1].move}"
        if kind == SpaceKind.CAREER_POINT:
            card = CAREER_POINT_DECK[number - 1]
            return f"Career Point #{number}: A {card.option_a:+d} or B {card.option_b:+d}"
        if kind == SpaceKind.YOURE_THE_BOSS:
            options = ", ".join(FIELD_NAMES[f] for f in YOURE_THE_BOSS_DECK[number - 1].options)
            return f"You're the Boss #{number}: everyone picks a token from {options}"
        if kind == SpaceKind.DID_YOU_KNOW:
            return f"Did You Know #{number}: everyone may take a {FIELD_NAMES[DID_YOU_KNOW_DECK[number - 1].field]} token"
        if kind == SpaceKind.FINISH:
            return f"Finish card {number}: {FINISH_CARD_TEXT.get(number, '?')}"
    except IndexError:
        pass
    return f"card kind {kind} #{number}"


class BoardView:
    def __init__(self) -> None:
        self.avatars: tuple[int, ...] = (0,) * 6
        self.positions: dict[int, int] = {}
        self.turn = 0
        self.in_game = False

    def who(self, seat: int) -> str:
        avatar = self.avatars[seat - 1] if 1 <= seat <= 6 else 0
        return AVATAR_NAMES[Avatar(avatar)] if avatar else f"seat {seat}"

    def ready_count(self) -> int:
        return sum(1 for a in self.avatars if a)

    def feed(self, packet: ServerPacket) -> list[str]:
        if isinstance(packet, ReadyResponse):
            return self._avatars(packet)
        if isinstance(packet, GameUpdate):
            return self._game(packet)
        if isinstance(packet, CardDealt):
            return [f"  card: {describe_card(packet.kind, packet.number)}"]
        if isinstance(packet, FinalResults):
            return self._final(packet)
        if isinstance(packet, Reset):
            self.in_game = False
            return ["Back to the lobby."]
        return []

    def _avatars(self, packet: ReadyResponse) -> list[str]:
        lines = []
        for seat, (old, new) in enumerate(zip(self.avatars, packet.avatars), start=1):
            if old != new:
                lines.append(f"Seat {seat}: " + (f"ready as {AVATAR_NAMES[Avatar(new)]}" if new else "left"))
        self.avatars = tuple(packet.avatars)
        return lines

    def _game(self, packet: GameUpdate) -> list[str]:
        lines = []
        if not self.in_game:
            self.in_game = True
            self.positions = {seat: 0 for seat in range(1, 7) if self.avatars[seat - 1]}
            lines.append("Game on! " + ", ".join(self.who(s) for s in self.positions) + " at the start.")
        else:
            mover = self.turn
            before = self._occupancy()
            gained = [i for i, (a, b) in enumerate(zip(before, packet.occupancy)) if b > a]
            if mover in self.positions and gained:
                start, end = self.positions[mover], gained[0]
                self.positions[mover] = end
                step = f"{start} -> {end}"
                where = KIND_NAMES.get(packet.space, "?") if packet.space else KIND_NAMES[BOARD[end]] if end == FINISH_SPACE else "plain"
                lines.append(f"{self.who(mover)} moves {step} ({where})")
        self.turn = packet.turn
        lines.append(self.render(packet.occupancy))
        lines.append("  everyone has finished: careers next" if packet.turn == 0 else f"  turn: {self.who(packet.turn)}")
        return lines

    def _occupancy(self) -> list[int]:
        counts = [0] * len(BOARD)
        for space in self.positions.values():
            counts[space] += 1
        return counts

    def render(self, occupancy: tuple[int, ...]) -> str:
        """The track as one line: a digit where players stand, a symbol per space kind elsewhere."""
        return "  " + "".join(str(n) if n else _KIND_SYMBOL[kind] for n, kind in zip(occupancy, BOARD))

    def _final(self, packet: FinalResults) -> list[str]:
        lines = ["Final standings:"]
        order = sorted((place, seat) for seat, place in enumerate(packet.places, start=1) if place)
        for place, seat in order:
            career = packet.careers[seat - 1]
            lines.append(f"  {place}. {self.who(seat):<7} {career} (${packet.salaries[seat - 1]},000)")
        return lines


LEGEND = "Board: · plain  ! Brand Crisis  C Career Point  Y You're the Boss  ? Did You Know  F Finish; digits = players"


async def host_session(client: LGMPClient, *, start_when: int | None, games: int, out=print) -> int:
    """Drive a host screen: create the room, show everything, start when asked. Returns games seen."""
    code = await client.host_room()
    out(f"Room {code} is open. Players join with:  lgmp play {code}   (bots: lgmp bot {code} --count N)")
    out(LEGEND)
    view = BoardView()
    finished = 0
    start_sent = False
    start_requested = trio.Event()

    async def wait_for_enter() -> None:
        await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        start_requested.set()

    async with trio.open_nursery() as nursery:
        if start_when is None and sys.stdin.isatty():
            out("Press Enter to start once everyone is ready.")
            nursery.start_soon(wait_for_enter)
        try:
            while finished < games:
                with trio.move_on_after(0.2 if start_when is None else math.inf):
                    packet = await client.receive()
                    for line in view.feed(packet):
                        out(line)
                    if isinstance(packet, FinalResults):
                        finished += 1
                    if isinstance(packet, Reset):
                        start_sent = False
                if not start_sent and not view.in_game and view.ready_count() and (
                    (start_when is not None and view.ready_count() >= start_when) or start_requested.is_set()
                ):
                    start_requested = trio.Event()
                    if start_when is None and sys.stdin.isatty() and finished < games:
                        nursery.start_soon(wait_for_enter)
                    await client.send(StartGame())
                    start_sent = True
        except ConnectionClosed:
            out("The server closed the room.")
        nursery.cancel_scope.cancel()
    return finished


async def run_host(host: str, port: int, start_when: int | None, games: int) -> int:
    try:
        client = await LGMPClient.connect(host, port)
    except OSError as exc:
        print(f"lgmp host: cannot connect to {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    async with client:
        played = await host_session(client, start_when=start_when, games=games)
    return 0 if played >= games else 1


async def run_demo(bots: int, delay: float, seed: int | None) -> int:
    """A server in this process, a host view and ``bots`` bots: one whole game, shown."""
    from .bot import play_bot
    from ..server.shell import LGMPServer

    bots = max(1, min(6, bots))
    server = LGMPServer(seed=seed)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        print(f"Demo server on 127.0.0.1:{port}; {bots} bots will play.")
        async with await LGMPClient.connect("127.0.0.1", port) as host:
            code_ready = trio.Event()
            codes: list[str] = []

            def out(line: str) -> None:
                print(line, flush=True)
                if line.startswith("Room ") and not codes:
                    codes.append(line.split()[1])
                    code_ready.set()

            async def bots_join() -> None:
                await code_ready.wait()
                for i in range(bots):
                    nursery.start_soon(lambda i=i: play_bot(
                        "127.0.0.1", port, codes[0], name=f"Bot{i + 1}",
                        seed=None if seed is None else seed + i, delay=delay))
                    await trio.sleep(0.05)

            nursery.start_soon(bots_join)
            played = await host_session(host, start_when=bots, games=1, out=out)
        await server.shutdown()
        nursery.cancel_scope.cancel()
    print("Demo over." if played else "Demo ended without a result.")
    return 0 if played else 1
