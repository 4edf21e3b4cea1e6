"""lgmp.server.connection: one client's byte stream, without sockets, trio or sleeping.

Bytes in: packets whole under any chunking, packets before bad bytes first, EOF, the packet
timeout (from a packet's first byte; ``handle_timer`` early does nothing). Bytes out: the
send-queue bound, partial writes, commit holds, and the three ways a connection ends
(``close`` keeps the queue, ``send_failed`` and a full queue drop it, ``abort`` keeps it).
A stateful test checks send/hold/release/bytes_sent against a list model.

Everything goes through the Connection's public API only (the decoder under it is
an implementation detail).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lgmp.limits import Limits
from lgmp.server.connection import Connection
from lgmp.wire.codec import encode, encode_all
from lgmp.wire.packets import CareerChoice, JoinRequest, ReadyRequest, Spin, StartGame
from tests.strategies import client_packets

TIMEOUT = 10.0  # packet_timeout in these tests
LIMITS = Limits(packet_timeout=TIMEOUT, send_queue=4)

JOIN = JoinRequest("HOST")
REDY = ReadyRequest("Ann", 2)
CRER = CareerChoice(3, "System Architect", 105)


def new_connection(**limits) -> Connection:
    return Connection(7, limits=dataclasses.replace(LIMITS, **limits), peer="test")


def take(conn: Connection) -> list:
    """Every packet the connection has ready."""
    packets = []
    while (packet := conn.next_packet()) is not None:
        packets.append(packet)
    return packets


def receive(conn: Connection, data: bytes, now: float = 0.0) -> list:
    conn.receive_data(data, now)
    return take(conn)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


# --------------------------------------------------------------------------- bytes in


@pytest.mark.parametrize(
    "bad",
    [b"HELO", b"GAME\x01\x00", b"RSET", b"\x00", b"JOX", b"\xff\xff\xff\xff"],
    ids=["unknown tag", "server tag", "server RSET", "no tag begins so", "broken prefix", "binary"],
)
def test_packets_before_bad_bytes_come_out_first_then_the_connection_is_lost(bad):
    conn = new_connection()
    before = [JOIN, REDY, Spin(3)]
    assert receive(conn, encode_all(before) + bad + encode(StartGame())) == before
    assert conn.closing is not None and conn.closing.startswith("bad bytes")
    assert conn.lost
    # Nothing after bad bytes can be framed: later bytes are ignored.
    assert receive(conn, encode(StartGame()), 1.0) == []
    assert conn.next_deadline() is None


@settings(max_examples=100, deadline=None)
@given(packets=st.lists(client_packets, max_size=6), cuts=st.lists(st.integers(0, 2_000), max_size=12))
def test_packets_before_bad_bytes_come_out_under_any_chunking(packets, cuts):
    conn = new_connection()
    got = []
    for chunk in split(encode_all(packets) + b"HELO" + encode(JOIN), cuts):
        got += receive(conn, chunk)
    assert got == packets
    assert conn.closing.startswith("bad bytes") and conn.lost


def test_eof_between_packets():
    conn = new_connection()
    assert receive(conn, encode(JOIN)) == [JOIN]
    assert receive(conn, b"", 1.0) == []
    assert conn.closing == "peer closed" and conn.lost
    assert conn.next_deadline() is None


@pytest.mark.parametrize("cut", [1, 4, 6], ids=["inside the tag", "after the tag", "inside the body"])
def test_eof_inside_a_packet(cut):
    conn = new_connection()
    assert receive(conn, encode(JOIN) + encode(REDY)[:cut]) == [JOIN]
    assert receive(conn, b"", 1.0) == []
    assert conn.closing == "peer closed inside a packet" and conn.lost
    assert conn.next_deadline() is None
    conn.handle_timer(100.0)  # no timeout on top of the EOF
    assert conn.closing == "peer closed inside a packet"


def test_packets_received_before_eof_still_come_out_when_taken_after_it():
    # As with h11: receive_data(b"") marks the end of the stream; the packets the
    # bytes before it completed are still returned, then the connection is lost.
    conn = new_connection()
    conn.receive_data(encode(JOIN) + encode(REDY), 0.0)
    conn.receive_data(b"", 0.0)
    assert take(conn) == [JOIN, REDY]
    assert conn.closing == "peer closed" and conn.lost

    conn = new_connection()
    conn.receive_data(encode(JOIN) + encode(REDY)[:3], 0.0)
    conn.receive_data(b"", 0.0)
    assert take(conn) == [JOIN]
    assert conn.closing == "peer closed inside a packet" and conn.lost


def test_bytes_after_the_connection_closed_are_ignored():
    conn = new_connection()
    conn.close("room closed")
    assert receive(conn, encode(JOIN)) == []
    conn.receive_data(b"", 1.0)
    assert conn.closing == "room closed" and not conn.lost  # the first reason stays


# --------------------------------------------------------------------------- the packet timeout


def test_the_packet_timeout_counts_from_the_first_byte_and_does_not_restart_while_it_trickles():
    conn = new_connection()
    assert conn.next_deadline() is None  # idle between packets: no deadline
    wire = encode(REDY)
    assert receive(conn, wire[:1], now=100.0) == []
    assert conn.next_deadline() == 100.0 + TIMEOUT
    for i, now in zip(range(1, len(wire) - 1), (102.0, 104.0, 106.0, 108.0, 109.9)):
        assert receive(conn, wire[i : i + 1], now) == []
        assert conn.next_deadline() == 100.0 + TIMEOUT, "the same packet trickling in moved the deadline"
        conn.handle_timer(now)  # before the deadline: nothing happens
        assert conn.closing is None
    conn.handle_timer(109.999)
    assert conn.closing is None and not conn.lost
    conn.handle_timer(110.0)
    assert conn.closing == f"packet not completed within {TIMEOUT:g} s" and conn.lost
    assert conn.next_deadline() is None
    assert receive(conn, wire[6:], 110.5) == []  # the rest, too late: ignored


def test_the_deadline_moves_only_when_a_new_packet_starts():
    conn = new_connection()
    join, redy = encode(JOIN), encode(REDY)
    receive(conn, join[:3], now=0.0)
    assert conn.next_deadline() == TIMEOUT
    # The JOIN completes at 9 s in the same read as the REDY's first two bytes:
    # the REDY's clock starts at 9 s.
    assert receive(conn, join[3:] + redy[:2], now=9.0) == [JOIN]
    assert conn.next_deadline() == 9.0 + TIMEOUT
    conn.handle_timer(TIMEOUT)  # the JOIN's old deadline is gone
    assert conn.closing is None
    assert receive(conn, redy[2:], now=18.0) == [REDY]
    assert conn.next_deadline() is None  # ended on a packet boundary
    conn.handle_timer(1_000.0)  # nothing to time out
    assert conn.closing is None
    receive(conn, join[:1], now=500.0)
    assert conn.next_deadline() == 500.0 + TIMEOUT


@settings(max_examples=150, deadline=None)
@given(
    packets=st.lists(st.sampled_from([JOIN, REDY, CRER, Spin(1), StartGame()]), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 1_000), max_size=20),
    gaps=st.lists(st.floats(0.0, 4.0), min_size=25, max_size=25),
)
def test_the_deadline_is_always_the_partial_packets_first_byte_plus_the_timeout(packets, cuts, gaps):
    limits = dataclasses.replace(LIMITS, packet_timeout=1e9)  # never times out here: only the deadline is checked
    conn = Connection(1, limits=limits)
    starts, at = [], 0
    for p in packets:
        starts.append(at)
        at += len(encode(p))
    offset, now, arrived, got = 0, 0.0, [], []  # arrived: (first offset, time) of each chunk
    for chunk, gap in zip(split(encode_all(packets), cuts), gaps):
        now += gap
        arrived.append((offset, now))
        got += receive(conn, chunk, now)
        offset += len(chunk)
        if offset in starts or offset == at:
            assert conn.next_deadline() is None
        else:
            first_byte = max(s for s in starts if s < offset)
            when = max(t for o, t in arrived if o <= first_byte)  # the read holding that byte
            assert conn.next_deadline() == when + 1e9
    # However the stream was cut, the packets come out whole, once, in order.
    assert got == packets and conn.closing is None and not conn.lost


# --------------------------------------------------------------------------- bytes out


def test_exactly_send_queue_packets_stay_open_one_more_closes_and_drops_the_queue():
    conn = new_connection(send_queue=4)
    conn.send(b"AAAA", packets=2)
    conn.send(b"BB")
    conn.send(b"C")
    assert conn.closing is None and conn.queued_packets == 4
    assert conn.data_to_send() == b"AAAABBC"
    conn.send(b"D")
    assert conn.closing == "send queue full (4 packets)" and conn.lost
    assert conn.data_to_send() == b"" and conn.queued_packets == 0
    assert not conn.pending and not conn.wants_write


def test_written_packets_make_room_in_the_send_queue():
    conn = new_connection(send_queue=2)
    for _ in range(10):
        conn.send(b"AB")
        conn.send(b"CD")
        assert conn.data_to_send() == b"ABCD"
        conn.bytes_sent(4)
    assert conn.closing is None and conn.queued_packets == 0


def test_partial_writes_keep_byte_order_and_a_packet_counts_until_fully_written():
    conn = new_connection(send_queue=10)
    conn.send(b"first")
    conn.send(b"second", packets=2)
    conn.send(b"third")
    written = b""
    for count, queued in ((3, 4), (2, 3), (5, 3), (1, 1), (4, 1), (1, 0)):
        data = conn.data_to_send()
        written += data[:count]
        conn.bytes_sent(count)
        assert conn.queued_packets == queued, f"after {written!r}"
    assert written == b"firstsecondthird"
    assert not conn.pending and conn.data_to_send() == b""


def test_a_hold_keeps_everything_queued_after_it_and_nothing_before():
    conn = new_connection(send_queue=10)
    conn.send(b"before")
    conn.hold(1)
    conn.send(b"FINL")
    conn.send(b"RSET")
    assert conn.data_to_send() == b"before" and conn.wants_write
    conn.bytes_sent(6)
    assert conn.data_to_send() == b"" and not conn.wants_write
    assert conn.pending and conn.held and conn.holds == (1,)
    assert conn.queued_packets == 2  # held packets count against the bound
    conn.release(1)
    assert conn.data_to_send() == b"FINLRSET" and not conn.held and conn.holds == ()


def test_two_holds_released_out_of_order():
    conn = new_connection(send_queue=10)
    conn.send(b"a")
    conn.hold(1)
    conn.send(b"b")
    conn.hold(2)
    conn.send(b"c")
    conn.release(2)  # the later game is stored first: its bytes still wait behind hold 1
    assert conn.data_to_send() == b"a" and conn.holds == (1,)
    conn.bytes_sent(1)
    assert conn.data_to_send() == b""
    conn.release(1)
    assert conn.data_to_send() == b"bc" and conn.holds == ()


def test_a_hold_at_the_front_of_an_empty_queue():
    conn = new_connection()
    conn.hold(5)
    assert conn.pending and conn.held and not conn.wants_write and conn.data_to_send() == b""
    conn.release(5)
    assert not conn.pending and not conn.held
    conn.release(5)  # releasing twice (the store, then STORE_WAIT) is harmless
    assert not conn.pending


def test_close_keeps_the_queue_to_flush():
    conn = new_connection(send_queue=10)
    conn.send(b"GAME")
    conn.hold(1)
    conn.send(b"FINL")
    conn.close("the host left")
    assert conn.closing == "the host left" and not conn.lost  # the core closed it: it knows
    conn.send(b"late")
    assert conn.data_to_send() == b"GAME"
    conn.bytes_sent(4)
    conn.release(1)
    assert conn.data_to_send() == b"FINL"
    conn.bytes_sent(4)
    assert not conn.pending and conn.queued_packets == 0


def test_abort_keeps_the_queue_to_flush_and_is_lost():
    conn = new_connection()
    conn.send(b"RSET")
    conn.abort("internal error")
    assert conn.closing == "internal error" and conn.lost
    assert conn.data_to_send() == b"RSET"


def test_send_failed_drops_the_queue_and_is_lost():
    conn = new_connection(send_queue=10)
    conn.send(b"written")
    conn.bytes_sent(3)
    conn.hold(1)
    conn.send(b"held")
    conn.send_failed("BrokenPipeError")
    assert conn.closing == "write failed: BrokenPipeError" and conn.lost
    assert not conn.pending and conn.data_to_send() == b"" and conn.queued_packets == 0
    assert conn.holds == ()


def test_send_failed_after_close_drops_the_queue_but_keeps_the_first_reason():
    conn = new_connection()
    conn.send(b"RSET")
    conn.close("shutting down")
    conn.send_failed("ConnectionResetError")
    assert conn.closing == "shutting down" and not conn.lost
    assert not conn.pending


@pytest.mark.parametrize(
    "end",
    [
        lambda c: c.close("closed by the core"),
        lambda c: c.abort("internal error"),
        lambda c: c.send_failed("EPIPE"),
        lambda c: (c.receive_data(b"", 0.0), c.next_packet()),
        lambda c: (c.receive_data(b"HELO", 0.0), c.next_packet()),
        lambda c: (c.receive_data(b"SP", 0.0), c.next_packet(), c.handle_timer(TIMEOUT)),
    ],
    ids=["close", "abort", "send_failed", "eof", "bad bytes", "packet timeout"],
)
def test_sends_after_closing_are_ignored(end):
    conn = new_connection()
    conn.send(b"before")
    end(conn)
    assert conn.closing is not None
    queue = conn.data_to_send()
    assert queue in (b"before", b"")  # kept to flush, or dropped
    for _ in range(10):  # never closes twice for a full queue either
        conn.send(b"after")
    conn.hold(99)  # nothing can follow it: it must not keep the connection pending
    assert conn.data_to_send() == queue and conn.holds == ()
    assert conn.queued_packets == (1 if queue else 0) and conn.pending == bool(queue)


# --------------------------------------------------------------------------- stateful: the send queue


class SendQueueMachine(RuleBasedStateMachine):
    """send / hold / release / bytes_sent against a list model.

    The model: a list of [bytes not yet written, packets] and hold tokens, in order.
    What may be written is everything before the first hold; a packet counts until
    its last byte is written; more than ``send_queue`` counted packets drop it all.
    """

    SEND_QUEUE = 12

    def __init__(self):
        super().__init__()
        self.conn = Connection(1, limits=Limits(send_queue=self.SEND_QUEUE))
        self.model: list = []
        self.sent = b""  # every byte accepted by send, in order
        self.written = b""  # every byte the "socket" took, in order
        self.tokens = 0
        self.overflowed = False

    def _offered(self) -> bytes:
        out = b""
        for item in self.model:
            if not isinstance(item, list):
                break
            out += item[0]
        return out

    def _counted(self) -> int:
        return sum(item[1] for item in self.model if isinstance(item, list))

    @rule(data=st.binary(min_size=1, max_size=40), packets=st.integers(1, 3))
    def send(self, data, packets):
        self.conn.send(data, packets)
        if self.overflowed:
            return
        if self._counted() + packets > self.SEND_QUEUE:
            self.overflowed = True
            self.model.clear()
            return
        self.model.append([data, packets])
        self.sent += data

    @rule()
    def hold(self):
        self.tokens += 1
        self.conn.hold(self.tokens)
        if not self.overflowed:
            self.model.append(self.tokens)

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def release(self, data):
        token = data.draw(st.integers(1, self.tokens))  # sometimes one released already
        self.conn.release(token)
        self.model = [item for item in self.model if isinstance(item, list) or item != token]

    @rule(data=st.data())
    def write(self, data):
        offered = self.conn.data_to_send()
        count = data.draw(st.integers(0, len(offered)))
        self.conn.bytes_sent(count)
        self._socket_took(offered, count)

    def _socket_took(self, offered: bytes, count: int) -> None:
        """The model's side of a write: ``count`` bytes of ``offered`` left, in order."""
        self.written += offered[:count]
        while count:
            item = self.model[0]
            taken = min(count, len(item[0]))
            item[0] = item[0][taken:]
            count -= taken
            if not item[0]:
                del self.model[0]

    @rule(data=st.data())
    def take(self, data):
        # The fast lane: everything, when nothing is held; what the socket did not take goes back.
        taken = self.conn.take()
        held = any(not isinstance(item, list) for item in self.model)
        if held:
            assert taken is None
            return
        assert taken == self._offered()
        if not taken:
            return
        assert self.conn.queued_packets == 0 and not self.conn.pending
        count = data.draw(st.integers(0, len(taken)))
        if count < len(taken):
            self.conn.put_back(count)
        self._socket_took(taken, count)

    @invariant()
    def offers_exactly_what_is_before_the_first_hold(self):
        # So no byte queued behind an unreleased hold is ever offered.
        assert self.conn.data_to_send() == self._offered()

    @invariant()
    def counts_packets_until_fully_written(self):
        assert self.conn.queued_packets == self._counted() <= self.SEND_QUEUE

    @invariant()
    def holds_are_the_unreleased_tokens_in_order(self):
        assert self.conn.holds == tuple(i for i in self.model if not isinstance(i, list))

    @invariant()
    def what_was_written_and_what_waits_is_what_was_sent_in_order(self):
        if self.overflowed:
            assert self.conn.closing == f"send queue full ({self.SEND_QUEUE} packets)" and self.conn.lost
            assert not self.conn.pending
        else:
            waiting = b"".join(item[0] for item in self.model if isinstance(item, list))
            assert self.written + waiting == self.sent
            assert self.conn.closing is None

    def teardown(self):
        # Release every hold and write everything: every byte sent arrives, once, in order.
        for token in range(1, self.tokens + 1):
            self.conn.release(token)
        while data := self.conn.data_to_send():
            self.written += data[:7]
            self.conn.bytes_sent(min(7, len(data)))
        assert not self.conn.pending and self.conn.queued_packets == 0
        if not self.overflowed:
            assert self.written == self.sent


SendQueueMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSendQueue = SendQueueMachine.TestCase
