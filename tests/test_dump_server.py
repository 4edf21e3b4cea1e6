"""lgmp-dump's tap between real clients and the real server: a whole game passes through
unchanged, and the tap prints exactly the packets each side sent."""

from __future__ import annotations

from functools import partial

import trio

from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.wire.codec import encode_all
from lgmp.wire.packets import Direction, FinalResults, ReadyResponse, Reset, StartGame
from lgmp.server.shell import LGMPServer
from tools.dump_core import NoteRecord, PacketRecord
from tools.dump_tap import TapStats, run_tap

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


class RecordingClient(LGMPClient):
    """An LGMPClient that keeps every packet it sends and receives."""

    def __init__(self, stream):
        super().__init__(stream)
        self.sent_packets, self.received_packets = [], []

    async def send(self, packet):
        self.sent_packets.append(packet)
        await super().send(packet)

    def _observe(self, packet):
        self.received_packets.append(packet)
        super()._observe(packet)


async def test_a_real_game_through_the_tap(nursery):
    server = LGMPServer(seed=11)
    server_port = await nursery.start(server.serve, "127.0.0.1", 0)
    records, stats = [], TapStats()
    closed: dict[str, NoteRecord] = {}

    def emit(record):
        records.append(record)
        if isinstance(record, NoteRecord) and record.event == "close":
            closed[record.stream] = record

    [listener] = await nursery.start(partial(run_tap, 0, ("127.0.0.1", server_port), emit, stats=stats))
    tap_port = listener.socket.getsockname()[1]

    host = RecordingClient(await trio.open_tcp_stream("127.0.0.1", tap_port))
    code = await host.host_room()
    async with trio.open_nursery() as bots:
        for i in range(2):
            bots.start_soon(lambda i=i: play_bot("127.0.0.1", tap_port, code, name=f"Bot{i}", seed=i))
            await trio.sleep(0.05)
        while sum(1 for a in host.avatars if a) < 2:
            await host.receive()
        await host.send(StartGame())
        # In stream order: FINL, RSET, then the lobby's avatars (sent after every game).
        expected = [FinalResults, Reset, ReadyResponse]
        while expected:
            if isinstance(await host.receive(), expected[0]):
                expected.pop(0)
    # The bots leave after their game; the host hears each leave as an avatar update.
    while host.avatars != (0,) * 6:
        await host.receive()
    await host.aclose()
    with trio.fail_after(5):
        while len(closed) < 3:
            await trio.sleep(0.01)

    assert stats.errors == 0 and stats.connections == 3
    host_records = [r for r in records if isinstance(r, PacketRecord) and r.stream == "#1"]
    assert [r.packet for r in host_records if r.direction is C2S] == host.sent_packets
    assert [r.packet for r in host_records if r.direction is S2C] == host.received_packets
    # Byte for byte: the tap forwarded exactly the bytes of those packets each way.
    assert closed["#1"].details["bytes_c2s"] == len(encode_all(host.sent_packets))
    assert closed["#1"].details["bytes_s2c"] == len(encode_all(host.received_packets))
    # The bots' connections carried whole games too.
    for connection in ("#2", "#3"):
        tags = [type(r.packet).__name__ for r in records if isinstance(r, PacketRecord) and r.stream == connection]
        assert tags[0] == "JoinRequest" and "FinalResults" in tags and "Reset" in tags
