"""``lgmp-dump --dialect unity-2022``: the 2022 dialect decoded and described, from hex,
and live through the tap between 2022 clients and the server."""

from __future__ import annotations

import json
from functools import partial

import trio

from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.server.shell import LGMPServer
from lgmp.wire.codec import encode
from lgmp.wire.packets import Direction, ReadyRequest, Reset, StartGame
from lgmp.wire.unity2022 import (
    CLIENT_PACKETS,
    SERVER_PACKETS,
    UNITY_2022,
    CardUpdate,
    EndTurn,
    HostUpdate,
    Land,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
)
from tools import dump
from tools.dump_core import ErrorRecord, NoteRecord, PacketRecord, format_json, format_text
from tools.dump_describe import describe
from tools.dump_tap import TapStats, run_tap

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT

SAMPLES = [
    ReadyRequest("Maya", 3), Land(4, 5), EndTurn(),
    UnityJoinResponse(1, "QZMB"), UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1)), UnityJoinResponse(5),
    Lobby(2), HostUpdate(2, 1, "Jonas"), PlayerUpdate((0, 1, 0, 1, 1, 1)), UnityReadyResponse(1, 0),
    UnityReadyResponse(9, 7), UnityGameUpdate(0), Move(1, -3), CardUpdate(4),
]


def test_every_2022_packet_is_described():
    own = {t for t in CLIENT_PACKETS + SERVER_PACKETS if t.__module__ == "lgmp.wire.unity2022"}
    assert len(own) == 10 and own <= {type(p) for p in SAMPLES}  # the rest are v1.0's, described as such
    lines = {type(p).__name__: describe(p).line for p in SAMPLES}
    assert lines["Land"] == "LAND kind=4 (Did You Know) category=5 (ignored)"
    assert describe(PlayerUpdate((0, 1, 0, 1, 1, 1))).line == (
        "PUPD avatars=[Red:taken Yellow:free Green:taken Blue:free Purple:free Pink:free]"
    )
    assert describe(UnityReadyResponse(1, 0)).line == "REDY name=1 (accepted) avatar=0 (taken or no such avatar)"
    assert describe(UnityReadyResponse(9, 7)).line == "REDY name=9 (unknown) avatar=7 (unknown)"
    assert describe(HostUpdate(2, 1, "Jonas")).line == 'HUPD index=2 avatar=1 (Red) name="Jonas"'
    assert describe(Move(1, -3)).line == "MOVE turn=1 spaces=-3"
    assert describe(UnityJoinResponse(2, free=(1,) * 6)).fields["free"] == [1] * 6
    for packet in SAMPLES:
        json.dumps(describe(packet).fields)  # JSON-ready


def test_hex_input_in_the_2022_dialect():
    wire = b"".join(encode(p, UNITY_2022) for p in SAMPLES[3:])
    result = dump.dump_input(wire.hex().encode(), dialect=UNITY_2022)
    assert result.status == dump.OK
    assert [r.packet for r in result.records] == SAMPLES[3:]
    assert "chose s>c" in result.messages[0]
    # The same bytes are not v1.0: the dumper says where they stop being it.
    v1 = dump.dump_input(wire.hex().encode(), direction=S2C)
    assert v1.status == dump.UNDECODABLE and isinstance(v1.records[-1], ErrorRecord)
    client = dump.dump_input(b"REDY\x04\x03MayaLAND\x04\x05ENDT", fmt="raw", dialect=UNITY_2022)
    assert [r.packet for r in client.records] == SAMPLES[:3]


def test_the_command_line_takes_the_dialect(capsys, tmp_path):
    sample = tmp_path / "lobby.hex"
    sample.write_text("4c 4f 42 59 01  48 55 50 44 01 03 04 4d 61 79 61\n")
    assert dump.main(["--dialect", "unity-2022", "--direction", "server", str(sample)]) == dump.OK
    out = capsys.readouterr().out.splitlines()
    assert out == ["@0 #1 s>c LOBY index=1 (a player's index)", '@5 #1 s>c HUPD index=1 avatar=3 (Green) name="Maya"']
    assert dump.main(["--direction", "server", str(sample)]) == dump.UNDECODABLE  # v1.0 by default
    capsys.readouterr()
    assert dump.main(["--dialect", "unity-2022", "--json", "--direction", "server", str(sample)]) == dump.OK
    assert json.loads(capsys.readouterr().out.splitlines()[1])["fields"]["name"] == "Maya"


async def test_a_2022_game_through_the_tap(nursery):
    server = LGMPServer(seed=11, dialect="unity-2022", limits=Limits(unity_packet_gap=0.005))
    server_port = await nursery.start(server.serve, "127.0.0.1", 0)
    records, stats = [], TapStats()
    closed = {}

    def emit(record):
        records.append(record)
        format_text(record)
        format_json(record)
        if isinstance(record, NoteRecord) and record.event == "close":
            closed[record.stream] = record

    run = partial(run_tap, 0, ("127.0.0.1", server_port), emit, stats=stats, dialect=UNITY_2022)
    [listener] = await nursery.start(run)
    tap_port = listener.socket.getsockname()[1]
    host = await LGMPClient.connect("127.0.0.1", tap_port, dialect="unity-2022")
    code = await host.host_room()
    async with trio.open_nursery() as bots:
        bots.start_soon(lambda: play_bot("127.0.0.1", tap_port, code, name="Bot1", seed=1, dialect="unity-2022"))
        with trio.fail_after(10):
            await host.wait_for(HostUpdate)
        await host.send(StartGame())
        with trio.fail_after(60):
            await host.wait_for(Reset)
    await host.aclose()
    with trio.fail_after(5):
        while len(closed) < 2:
            await trio.sleep(0.01)
    assert stats.errors == 0
    host_tags = [r.description.tag for r in records if isinstance(r, PacketRecord) and r.stream == "#1" and r.direction is S2C]
    assert host_tags[:3] == ["JOIN", "LOBY", "HUPD"] and "MOVE" in host_tags and host_tags[-2:] == ["FINL", "RSET"]
    bot_tags = [r.description.tag for r in records if isinstance(r, PacketRecord) and r.stream == "#2" and r.direction is S2C]
    assert bot_tags[:3] == ["JOIN", "REDY", "PUPD"] and "LOBY" in bot_tags and "MOVE" not in bot_tags
