"""``lgmp demo``: a server, a host screen and bots in one process -- one whole game, shown.

The server is started through ``LGMPServer``'s public API only (construct,
``serve`` under a nursery, ``shutdown``), on a free loopback port. Its room is
for the bots: the game starts as soon as they are ready, so the screen says how
to play yourself instead of offering a join command that could not work.
"""

from __future__ import annotations

import trio

from ..limits import Limits
from ..server.shell import LGMPServer
from .board import plural
from .bot import play_bot
from .client import LGMPClient
from .host import host_session
from .views import Header, HostScreen, make_screen

DEMO_HOST = "127.0.0.1"
# Bots with a tiny --delay send faster than the default flood limit allows a person;
# this private server lets them.
DEMO_LIMITS = Limits(packet_burst=1_000, packet_rate=1_000.0)


def demo_header(bots: int, port: int) -> Header:
    # No join command: the demo's room starts as soon as its bots are ready.
    return Header(f"demo on port {port}",
                  note=f"{plural(bots, 'bot')} {'plays' if bots == 1 else 'play'} here; "
                       "to play yourself: lgmp serve, lgmp host, lgmp play CODE")


async def demo_session(screen: HostScreen, *, bots: int, delay: float, seed: int | None) -> int:
    """Run one demo game on ``screen``; the number of games played to the end (0 or 1)."""
    server = LGMPServer(limits=DEMO_LIMITS, seed=seed)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, DEMO_HOST, 0)

        async def bot(i: int, code: str) -> None:
            try:
                await play_bot(DEMO_HOST, port, code, name=f"Bot{i + 1}",
                               seed=None if seed is None else seed + i, delay=delay)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the host screen shows what the room saw; a lost bot is played by the server

        async def bots_join(code: str) -> None:
            for i in range(bots):
                nursery.start_soon(bot, i, code)
                await trio.sleep(0.05)  # join in order, so seats follow bot numbers

        async with await LGMPClient.connect(DEMO_HOST, port) as host:
            played = await host_session(host, screen, start_when=bots, games=1,
                                        header=lambda code: demo_header(bots, port),
                                        on_open=lambda code: nursery.start_soon(bots_join, code))
            await host.leave()
        await server.shutdown()
        nursery.cancel_scope.cancel()
    return played


async def run_demo(bots: int, delay: float, seed: int | None) -> int:
    """``lgmp demo``: the exit status (0 once the game was played to the end)."""
    screen = make_screen()
    try:
        played = await demo_session(screen, bots=bots, delay=delay, seed=seed)
    except BaseException:  # Ctrl-C (a cancellation) included: leave the screen, print nothing more
        screen.close(keep=False)
        raise
    screen.close()
    print("Demo over." if played else "The demo ended without a result.", flush=True)
    return 0 if played else 1
