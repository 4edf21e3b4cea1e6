"""The fuzzing harness (fuzz/): a short, time-bounded run of every target, and the bugs it found.

Every target runs here briefly so CI proves the harness works; fuzz/README.md says how
to run each one for long. atheris is only in the ``fuzz`` extra: without it the
atheris drivers are skipped, but the same target functions still run on random and
hypothesis inputs.

Bugs the fuzzers found are at the end, one regression test each: a strict xfail while
the bug is open (its reason says "known bug: <name>", and the name is in
fuzz/room_target.py ``KNOWN_BUGS`` so the fuzzers tolerate it meanwhile); once it is
fixed the test XPASSes, and then the mark and the ``KNOWN_BUGS`` entry go.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import make_corpus, net_fuzz, packetgen
from fuzz.decoder_target import C2S, S2C, check_decoder
from fuzz.room_target import KNOWN_BUGS, Program, RoomDriver, room_program_test, run_program
from lgmp.wire.codec import encode_all
from lgmp.rooms.hub import Hub
from lgmp.limits import Limits
from lgmp.wire.packets import JoinAnswer, JoinRequest, JoinResponse, Spin, StartGame
from lgmp.rooms.events import CloseMember, Deliver
from lgmp.rooms.room import Room
from lgmp.server.shell import LGMPServer
from tests.strategies import client_packets, server_packets

ROOT = Path(__file__).resolve().parent.parent
DIRECTIONS = [pytest.param(C2S, id="c2s"), pytest.param(S2C, id="s2c")]


@pytest.fixture(scope="module")
def seed_corpus():
    return make_corpus.build()


# --- decoder targets ----------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_decoder_target_random_inputs(direction, seed_corpus):
    """A few thousand inputs: seeds, random bytes, random streams, mutated seeds and streams."""
    rng = random.Random(f"decoder-{direction.value}")
    seeds = sorted(seed_corpus[direction])
    deadline = time.monotonic() + 8
    for i in range(3000):
        roll = rng.random()
        if i < len(seeds):
            data = seeds[i]
        elif roll < 0.2:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        elif roll < 0.45:
            data = packetgen.stream(rng, direction)
        else:
            data = packetgen.mutate(rng, rng.choice(seeds) if roll < 0.75 else packetgen.stream(rng, direction))
        check_decoder(direction, data)
        if time.monotonic() > deadline:
            break
    assert i >= 1000


def _spliced(wire: bytes, junk: bytes, at: int, cut: int) -> bytes:
    at %= len(wire) + 1
    data = wire[:at] + junk + wire[at:]
    return data[: len(data) - cut % (len(data) + 1)] if cut else data


@settings(max_examples=200, deadline=None)
@given(st.lists(client_packets, max_size=6), st.binary(max_size=6), st.integers(0, 2000), st.integers(0, 300))
def test_decoder_target_hypothesis_c2s(packets, junk, at, cut):
    check_decoder(C2S, _spliced(encode_all(packets), junk, at, cut))


@settings(max_examples=150, deadline=None)
@given(st.lists(server_packets, max_size=4), st.binary(max_size=6), st.integers(0, 8000), st.integers(0, 300))
def test_decoder_target_hypothesis_s2c(packets, junk, at, cut):
    check_decoder(S2C, _spliced(encode_all(packets), junk, at, cut))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_decoder_target_any_bytes(data):
    check_decoder(C2S, data)
    check_decoder(S2C, data)


def test_decoder_target_catches_a_broken_encoder(monkeypatch):
    """The target is live: an encoder that drifts from the decoder is caught."""
    import fuzz.decoder_target as target

    real = target.encode
    monkeypatch.setattr(target, "encode", lambda p: real(p) + (b"\x00" if isinstance(p, Spin) else b""))
    with pytest.raises(AssertionError, match="re-encodes"):
        check_decoder(C2S, b"JOINHOSTSPIN\x04")


def test_seed_corpus_script(tmp_path, seed_corpus):
    counts = make_corpus.write(tmp_path)
    assert counts == {"c2s": len(seed_corpus[C2S]), "s2c": len(seed_corpus[S2C])}
    assert max(len(d) for d in seed_corpus[S2C]) < 20_000  # small: generated, never committed
    for direction in (C2S, S2C):
        files = list((tmp_path / direction.value).iterdir())
        assert len(files) == counts[direction.value] >= 80
        clean = 0
        for path in files:
            decoded = check_decoder(direction, path.read_bytes())
            clean += decoded.failed is None
        assert clean >= len(files) // 2  # mostly valid packets and streams


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_decoder_atheris_driver(direction, tmp_path):
    pytest.importorskip("atheris")
    make_corpus.write(tmp_path / "seeds")
    (tmp_path / "out").mkdir()
    run = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "fuzz_decoder.py"), direction.value, "-runs=3000", "-max_total_time=20", "-max_len=1600",
         f"-artifact_prefix={tmp_path}/", str(tmp_path / "out"), str(tmp_path / "seeds" / direction.value)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 3000 runs" in run.stderr or "DONE" in run.stderr, run.stderr[-2000:]


# --- the room target ------------------------------------------------------------------------------

#: The room target as a normal hypothesis test (atheris reaches the same function through
#: ``room_program_test.hypothesis.fuzz_one_input`` in fuzz/fuzz_room.py).
test_room_target = room_program_test


def test_room_target_full_game_with_leave_and_rejoin():
    driver = RoomDriver(seed=3)
    host = driver.connect()
    driver.send(host, JoinRequest("HOST"))
    code = next(iter(driver.hub.rooms))
    players = [driver.connect() for _ in range(6)]
    for i, player in enumerate(players):
        driver.send(player, JoinRequest(code.lower() if i % 2 else code))
        driver.legal(player, i)
    late = driver.connect()
    assert [o.packet for o in driver.send(late, JoinRequest(code)) if isinstance(o, Deliver)] == [JoinResponse(JoinAnswer.LOBBY_FULL)]
    driver.send(host, StartGame())
    driver.play(30)
    driver.disconnect(players[2])
    back = driver.connect()
    driver.send(back, JoinRequest(code))
    driver.legal(back, 1)  # reclaims the seat
    driver.disconnect(players[4])  # never comes back: the server plays it
    for _ in range(3000):
        if driver.stats.games_finished:
            break
        driver.play(1)
        driver.wait(0.5)
    assert driver.stats.games_finished == 1
    driver.drain()


def test_room_target_catches_a_wrong_resync(monkeypatch):
    """The target is live: a resync that is not the one PROTOCOL.md 10.2 gives is caught."""
    monkeypatch.setattr(Room, "resync", lambda self, member: [])
    program = Program(seed=1, server_spins=False, max_rooms=5000, players=1, start=False, steps=[("send", 1, StartGame())])
    with pytest.raises(AssertionError, match="resync"):
        run_program(program)


def test_room_atheris_driver(tmp_path):
    pytest.importorskip("atheris")
    run = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "fuzz_room.py"), "-runs=150", "-max_total_time=20",
         f"-artifact_prefix={tmp_path}/", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]


# --- the network fuzzer -------------------------------------------------------------------------------


@pytest.mark.slow
def test_net_fuzz_short_run():
    """About 10 s: a few dozen hostile sessions (every kind at least once) around control games."""
    config = net_fuzz.Config(sessions=40, seconds=5, concurrency=20, seed=1, settle_seconds=10)
    summary = net_fuzz.run(config)
    report = summary.render()
    assert summary.ok, report
    assert summary.total_sessions >= 20 and set(summary.sessions) == set(net_fuzz.KINDS), report
    assert summary.control_games >= 2 and summary.server_exit == 0, report
    assert summary.fds_final <= summary.fds_baseline, report


def test_net_fuzz_cli_refuses_bad_options():
    with pytest.raises(SystemExit):
        net_fuzz.parse_args(["--bots", "7"])
    assert net_fuzz.parse_args(["--sessions", "3", "--seconds", "1.5"]).sessions == 3


# --- bugs the fuzzers found: strict xfail while open (they fail once fixed), plain tests once fixed ------


def test_every_known_bug_has_a_regression_test():
    """Each open bug in KNOWN_BUGS has a strict xfail test here whose reason names it."""
    source = Path(__file__).read_text()
    for name in KNOWN_BUGS:
        assert f"known bug: {name}" in source, name


def test_fixed_bug_tenth_strike_closes_the_connection():
    """Found by fuzz/room_target.py and net_fuzz (strike-limit-off-by-one): the hub closed at the 11th
    strike within 60 s; PROTOCOL.md 10.1/10.2 and lgmp/limits.py say the 10th."""
    hub = Hub()
    host = hub.connect(0.0)
    hub.receive(host, JoinRequest("HOST"), 0.0)
    outputs = []
    for i in range(1, 11):  # STRT with nobody seated: ignored, a strike each
        outputs = hub.receive(host, StartGame(), i * 0.1)
    assert CloseMember(host, "too many ignored packets (last: no player is seated)") in outputs


def test_fixed_bug_join_deadline_after_a_refused_join():
    """Found by fuzz/room_target.py and net_fuzz (join-timer-lost-after-refused-join): after a refused
    JOIN (3/4/5) the new 10 s JOIN deadline was never scheduled, so a silent connection was never
    closed (PROTOCOL.md 5.1/10.1)."""
    hub = Hub()
    conn = hub.connect(0.0)  # JOIN deadline 10.0
    # Answered 4 (and, since refused JOINs are strikes, a PacketIgnored too).
    assert Deliver((conn,), JoinResponse(JoinAnswer.ROOM_NOT_FOUND)) in hub.receive(conn, JoinRequest("ZZZZ"), 1.0)
    # The new deadline is 11.0. The server's timer loop ticks at hub.next_deadline(): 10.0 first.
    assert hub.tick(10.0) == []
    assert hub.next_deadline() is not None and hub.next_deadline() <= 11.0
    assert CloseMember(conn, "no JOIN in time") in hub.tick(11.0)


async def test_fixed_bug_packet_timeout_counts_from_the_first_byte(nursery):
    """Found by fuzz/net_fuzz.py, half/trickle sessions (packet-timeout-restarts-on-every-read):
    lgmp/server/shell.py restarted the packet timeout at every read, so a client trickling a byte at
    a time held a started packet open forever; PROTOCOL.md 10.1 says 10 s after its first byte."""
    server = LGMPServer(limits=Limits(packet_timeout=0.6))
    port = await nursery.start(server.serve, "127.0.0.1", 0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    started = trio.current_time()
    await stream.send_all(b"REDY\x28")  # the packet has started: 40 name bytes and an avatar to come
    closed_after = None
    with trio.move_on_after(3.0):
        for _ in range(40):
            with trio.move_on_after(0.2):
                try:
                    data = await stream.receive_some(100)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    closed_after = trio.current_time() - started
                    break
            try:
                await stream.send_all(b"x")
            except trio.BrokenResourceError:
                closed_after = trio.current_time() - started
                break
    await stream.aclose()
    assert closed_after is not None and closed_after < 0.6 + 0.8, f"still open {trio.current_time() - started:.1f} s after its first byte"
