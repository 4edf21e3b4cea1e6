"""``lgmp host``: create a room, show it on a host screen, start the game when asked.

``host_session`` runs one room on any ``HostScreen`` (``lgmp.clients.views``): it is
what ``lgmp host`` and ``lgmp demo`` share. It merges three sources into one queue --
the server's packets, the lines typed (each one an Enter press) and a clock tick
that keeps the screen's "waiting N s" honest -- and handles them in order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import trio

from ..wire.errors import LGMPError
from ..wire.packets import FinalResults, ReadyAnswer, ReadyResponse, StartGame
from .board import Event, EventKind, HostBoard, Phase, plural
from .client import LGMPClient
from .play import LineSource, StdinLines, connect_error
from .views import Header, HostScreen, host_header, make_screen


def lobby_prompt(start_when: int | None, keys: bool) -> str:
    if start_when is not None:
        return f"The game starts when {plural(start_when, 'player')} {'is' if start_when == 1 else 'are'} ready."
    if keys:
        return "Press Enter to start the game once every player is ready."
    return "Nothing can start this game: input is closed. Use --start-when N."


async def host_session(
    client: LGMPClient,
    screen_: HostScreen,
    *,
    start_when: int | None,
    games: int,
    keys: LineSource | None = None,
    header: Callable[[str], Header],
    on_open: Callable[[str], object] | None = None,
    tick: float = 1.0,
) -> int:
    """Create a room and show it until ``games`` games are over (or the room ends). Games seen to the end.

    The game starts when ``start_when`` players are ready, or when a line comes from
    ``keys`` (Enter) while someone is ready: a line typed while nobody is ready is
    answered and forgotten, never kept for later.
    """
    code = await client.host_room()
    board = HostBoard()
    screen_.open(code, header(code))
    if on_open is not None:
        on_open(code)
    prompt = lobby_prompt(start_when, keys is not None)
    screen_.prompt(prompt)
    inbox_send, inbox = trio.open_memory_channel[tuple[str, object]](math.inf)
    start_sent = False

    async def packets() -> None:
        try:
            while True:
                inbox_send.send_nowait(("packet", await client.receive()))
        except (LGMPError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            inbox_send.send_nowait(("closed", exc))

    async def typed() -> None:
        while True:
            line = await keys.readline()
            inbox_send.send_nowait(("key", line))
            if line.text is None:
                return

    async def ticks() -> None:
        while True:
            await trio.sleep(tick)
            inbox_send.send_nowait(("tick", None))

    async def start() -> None:
        nonlocal start_sent
        await client.send(StartGame())
        start_sent = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(packets)
        nursery.start_soon(ticks)
        if keys is not None:
            nursery.start_soon(typed)
        async for kind, item in inbox:
            now = trio.current_time()
            if kind == "closed":
                screen_.show(board, [Event(EventKind.NOTE, ("The server closed the connection.",))], now)
                break
            if kind == "tick":
                screen_.show(board, [], now)
                continue
            if kind == "key":
                if item.text is None:  # end of input: nobody can press Enter any more
                    prompt = lobby_prompt(start_when, False)
                    if board.phase is Phase.LOBBY:
                        screen_.prompt(prompt)
                    continue
                if board.phase is not Phase.LOBBY:
                    continue
                if not board.ready_seats():
                    screen_.prompt("Enter pressed, but nobody is ready yet: "
                                   "press it again once players have picked a colour.")
                elif not start_sent:
                    await start()
                continue
            before = board.avatars
            events = board.feed(item, now)
            screen_.show(board, events, now)
            if isinstance(item, ReadyResponse) and item.response == ReadyAnswer.UPDATE and start_sent \
                    and board.phase is Phase.LOBBY and item.avatars == before:
                # STRT answered with a resync: someone is seated but has not picked a name and colour.
                start_sent = False
                screen_.prompt("Not started: a player who joined has not picked a name and colour yet."
                               + (" Press Enter to try again." if start_when is None else ""))
                continue
            if board.phase is not Phase.LOBBY:
                start_sent = False
            if board.phase is Phase.CLOSED or (board.phase is Phase.LOBBY and board.games_finished >= games):
                break
            if board.phase is Phase.LOBBY and isinstance(item, FinalResults | ReadyResponse):
                screen_.prompt(prompt)
            if board.phase is Phase.LOBBY and start_when is not None and not start_sent \
                    and len(board.ready_seats()) >= start_when:
                await start()
        nursery.cancel_scope.cancel()
    return board.games_finished


async def run_host(host: str, port: int, start_when: int | None, games: int) -> int:
    """``lgmp host``: the exit status (0 when every game asked for was played to the end)."""
    try:
        client = await LGMPClient.connect(host, port)
    except OSError as exc:
        print(f"lgmp host: cannot connect to {host}:{port}: {connect_error(exc)}. Is `lgmp serve` running there?",
              file=sys.stderr)
        return 1
    screen_ = make_screen()
    keys = StdinLines() if start_when is None else None
    try:
        async with client:
            played = await host_session(client, screen_, start_when=start_when, games=games, keys=keys,
                                        header=lambda code: host_header(code, host, port))
            await client.leave()
    except BaseException:  # Ctrl-C (a cancellation) included: leave the screen, print nothing more
        screen_.close(keep=False)
        raise
    screen_.close()
    return 0 if played >= games else 1

