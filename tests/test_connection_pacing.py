"""lgmp.server.connection, paced: one packet per write, a gap between packets, and
snapshots that supersede unsent ones. Time is passed in; nothing sleeps.

A paced connection serves a client that acts on the first packet of each read only
(the Unity client): every ``data_to_send(now)`` is one whole packet (or the rest of
one the socket took in part), and the next waits ``gap`` after the previous was fully
written. A v1.0 connection is unpaced: these tests also pin that it is unchanged.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgmp.limits import Limits
from lgmp.server.connection import Connection
from lgmp.wire.codec import V1_0
from lgmp.wire.packets import JoinRequest, ReadyRequest
from lgmp.wire.unity2022 import UNITY_2022, EndTurn

GAP = 0.05
LIMITS = Limits(packet_timeout=10.0, send_queue=6)
A, B, C = b"LOBY\x01", b"REDY\x01\x01", b"GAME\x02"
PUPD1, PUPD2, PUPD3 = b"PUPD\x01\x01\x01\x01\x01\x01", b"PUPD\x00\x01\x01\x01\x01\x01", b"PUPD\x00\x00\x01\x01\x01\x01"


def paced(**limits) -> Connection:
    return Connection(3, limits=dataclasses.replace(LIMITS, **limits), dialect=UNITY_2022, gap=GAP)


def write_all(conn: Connection, now: float) -> bytes:
    """What one write at ``now`` sends (the socket takes everything offered)."""
    data = conn.data_to_send(now)
    conn.bytes_sent(len(data), now)
    return data


def test_one_packet_per_write_and_a_gap_between():
    conn = paced()
    for packet in (A, B, C):
        conn.send(packet)
    assert conn.send_deadline() is None  # the first may go at once
    assert write_all(conn, 1.0) == A
    assert conn.send_deadline() == pytest.approx(1.0 + GAP) == conn.next_deadline()
    assert conn.data_to_send(1.0 + GAP / 2) == b""  # too early: nothing
    assert write_all(conn, 1.0 + GAP) == B
    assert write_all(conn, 1.2) == C
    assert not conn.pending and conn.send_deadline() is None and conn.queued_packets == 0


def test_the_gap_counts_from_the_end_of_the_previous_packet():
    conn = paced()
    conn.send(A)
    conn.send(B)
    assert conn.data_to_send(1.0) == A
    conn.bytes_sent(2, 1.0)  # the socket took part of it
    assert conn.send_deadline() is None  # the rest of a packet on the wire goes at once
    assert conn.data_to_send(1.01) == A[2:]
    conn.bytes_sent(len(A) - 2, 1.02)
    assert conn.send_deadline() == pytest.approx(1.02 + GAP)
    assert conn.data_to_send(1.02 + GAP) == B


def test_a_packet_queued_after_a_quiet_spell_goes_at_once():
    conn = paced()
    conn.send(A)
    write_all(conn, 1.0)
    conn.send(B)
    assert write_all(conn, 5.0) == B


def test_paced_writes_need_now():
    conn = paced()
    conn.send(A)
    with pytest.raises(TypeError, match="needs now"):
        conn.data_to_send()


def test_a_snapshot_supersedes_the_unsent_one():
    conn = paced()
    conn.send(A)
    conn.send(PUPD1, snapshot="PUPD")
    conn.send(B)
    conn.send(PUPD2, snapshot="PUPD")
    conn.send(PUPD3, snapshot="PUPD")
    assert conn.queued_packets == 3
    sent = [write_all(conn, t) for t in (0.0, 1.0, 2.0)]
    assert sent == [A, B, PUPD3]  # only the latest waited, in the place it was queued


def test_a_snapshot_on_the_wire_is_not_taken_back():
    conn = paced()
    conn.send(PUPD1, snapshot="PUPD")
    conn.data_to_send(0.0)
    conn.bytes_sent(3, 0.0)
    conn.send(PUPD2, snapshot="PUPD")
    assert conn.queued_packets == 2
    assert write_all(conn, 0.01) == PUPD1[3:]
    assert write_all(conn, 1.0) == PUPD2


def test_snapshots_keep_the_queue_bound_from_closing_a_reader():
    conn = paced()  # send_queue 6
    for i in range(50):
        conn.send(PUPD1 if i % 2 else PUPD2, snapshot="PUPD")
    assert conn.closing is None and conn.queued_packets == 1
    for _ in range(7):
        conn.send(A)
    assert conn.lost and "send queue full" in conn.closing


def test_snapshots_behind_a_hold_wait_there():
    conn = paced()
    conn.send(PUPD1, snapshot="PUPD")
    conn.hold(1)
    conn.send(A)
    conn.send(PUPD2, snapshot="PUPD")  # the one before the hold is superseded too
    assert write_all(conn, 0.0) == b"" and conn.held
    conn.release(1)
    assert [write_all(conn, t) for t in (1.0, 2.0)] == [A, PUPD2]


def test_the_read_side_deadline_is_not_the_send_side_one():
    conn = paced()
    conn.receive_data(b"RE", 2.0)
    assert conn.next_packet() is None
    conn.send(A)
    conn.send(B)
    write_all(conn, 2.0)
    assert conn.read_deadline() == pytest.approx(12.0)
    assert conn.send_deadline() == pytest.approx(2.0 + GAP)
    assert conn.next_deadline() == pytest.approx(2.0 + GAP)
    conn.handle_timer(2.0 + GAP)  # a send deadline is no read timeout
    assert conn.closing is None


def test_a_paced_connection_decodes_its_dialect():
    conn = paced()
    conn.receive_data(b"JOINHOSTREDY\x04\x03MayaENDT", 0.0)
    assert [conn.next_packet() for _ in range(3)] == [JoinRequest("HOST"), ReadyRequest("Maya", 3), EndTurn()]
    assert conn.dialect is UNITY_2022 and conn.paced


def test_an_unpaced_connection_writes_everything_at_once():
    conn = Connection(3, limits=LIMITS)
    assert conn.dialect is V1_0 and not conn.paced
    conn.send(A)
    conn.send(PUPD1, snapshot="PUPD")
    conn.send(B)
    conn.send(PUPD2, snapshot="PUPD")
    assert conn.data_to_send() == A + B + PUPD2
    conn.bytes_sent(len(A + B + PUPD2))
    assert conn.send_deadline() is None and not conn.pending


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["send", "snap", "write", "part"]), st.floats(0, 0.2)), max_size=40))
def test_paced_writes_against_a_model(steps):
    """One packet (or the rest of one) per write, never sooner than the gap after the
    previous one ended, snapshots superseded unless on the wire, against a list model."""
    conn = paced(send_queue=1000)
    now, last_end = 0.0, None
    queue: list[bytes] = []  # the model: unsent packets in order
    rest: bytes | None = None  # what is left of the head packet once the socket took part of it
    for i, (op, wait) in enumerate(steps):
        now += wait
        if op == "send":
            packet = b"LOBY" + bytes([i])
            conn.send(packet)
            queue.append(packet)
        elif op == "snap":
            conn.send(PUPD1, snapshot="PUPD")
            head = queue[:1] if rest is not None else []
            queue = head + [p for p in queue[len(head):] if p != PUPD1] + [PUPD1]
        else:
            data = conn.data_to_send(now)
            if rest is not None:
                expected = rest
            elif not queue or (last_end is not None and now < last_end + GAP):
                expected = b""
            else:
                expected = queue[0]
            assert data == expected
            if not data:
                continue
            count = len(data) if op == "write" else max(1, len(data) // 2)
            conn.bytes_sent(count, now)
            if count == len(data):
                queue.pop(0)
                rest, last_end = None, now
            else:
                rest = data[count:]
        assert conn.queued_packets == len(queue)
