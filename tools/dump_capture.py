"""pcap / pcapng captures to LGMP records: frames, TCP reassembly, decoding.

dpkt reads the capture and parses the link, IP and TCP headers; reassembly is ours
because LGMP has no length prefix: a single missing or doubled byte would misframe
everything after it, so each direction must be rebuilt exactly as the receiver saw it.

Reassembly, per direction of each connection: every data segment is kept with its
sequence number; sorted by sequence number (then capture order) they are walked once,
skipping bytes already taken (retransmissions, duplicates, overlaps: the first copy
wins) and stopping at a hole (a segment the capture lacks), since nothing after a
hole can be framed. Out-of-order segments thereby land in their place; each byte
range is timed by when it became deliverable in order, the latest capture time so far.
"""

from __future__ import annotations

import io
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import dpkt

from lgmp.wire.packets import Direction

from lgmp.wire.codec import Dialect

from .dump_core import C2S, S2C, Gap, Record, decode_chunks

DEFAULT_PORT = 1111

PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # the Section Header Block type, the same in either byte order

# Link-layer header sizes for the link types whose payload is IP after a fixed header;
# the IP version nibble then says v4 or v6. Ethernet (with VLAN tags) goes through dpkt.
_IP_AFTER = {
    0: 4,  # BSD loopback (NULL): 4-byte address family
    108: 4,  # OpenBSD loopback (LOOP)
    12: 0,  # raw IP (some BSDs)
    14: 0,  # raw IP (OpenBSD)
    101: 0,  # raw IP
    228: 0,  # raw IPv4
    229: 0,  # raw IPv6
    113: 16,  # Linux cooked capture (SLL), e.g. tcpdump -i any
    276: 20,  # Linux cooked capture v2 (SLL2)
}
_ETHERNET = 1
SUPPORTED_LINKTYPES = {_ETHERNET, *_IP_AFTER}

_SEQ_MOD = 1 << 32


class CaptureError(ValueError):
    """The file is not a capture we can read (exit code 2)."""


def capture_kind(data: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` by the file's magic number, else None."""
    magic = data[:4]
    if magic in PCAP_MAGICS:
        return "pcap"
    if magic == PCAPNG_MAGIC:
        return "pcapng"
    return None


class _WatchedFile(io.BytesIO):
    """A capture file that notices when it was cut short.

    dpkt stops quietly when the file ends, even mid-record (it yields what it could
    read), so we watch its reads instead: a normal end is one empty read at a record
    boundary; a read that returns some but not all of what was asked, or a second
    short read, means the file ended inside a record.
    """

    def __init__(self, data: bytes):
        super().__init__(data)
        self.short_reads = 0
        self.cut = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and size > 0 and len(data) < size:
            self.short_reads += 1
            self.cut = self.cut or bool(data) or self.short_reads > 1
        return data


@dataclass
class Frames:
    linktype: int
    frames: list[tuple[float, bytes]]
    truncated: str | None = None  # why reading stopped early, if it did


def read_frames(data: bytes) -> Frames:
    """Every frame of a pcap or pcapng capture, with its time in seconds since the epoch."""
    kind = capture_kind(data)
    if kind is None:
        raise CaptureError(f"not a pcap or pcapng capture (starts with {data[:4].hex() or 'nothing'})")
    source = _WatchedFile(data)
    try:
        reader = (dpkt.pcap.Reader if kind == "pcap" else dpkt.pcapng.Reader)(source)
    except (ValueError, dpkt.UnpackError, struct.error) as exc:
        raise CaptureError(f"bad {kind} header: {exc}") from exc
    linktype = reader.datalink()
    if linktype not in SUPPORTED_LINKTYPES:
        raise CaptureError(f"unsupported link type {linktype} (want Ethernet, loopback, raw IP or Linux cooked)")
    frames: list[tuple[float, bytes]] = []
    truncated = None
    try:
        for ts, frame in reader:
            frames.append((float(ts), bytes(frame)))  # nanosecond pcaps give Decimal times
    except (ValueError, dpkt.UnpackError, struct.error) as exc:
        # A capture cut short (tcpdump killed mid-write) is common: keep what came before.
        truncated = f"{kind} capture truncated after {len(frames)} frames ({str(exc) or type(exc).__name__})"
    if truncated is None and source.cut:
        truncated = f"{kind} capture truncated: its last frame is incomplete"
    return Frames(linktype, frames, truncated)


def _ip_packet(linktype: int, frame: bytes) -> dpkt.ip.IP | dpkt.ip6.IP6 | None:
    if linktype == _ETHERNET:
        ip = dpkt.ethernet.Ethernet(frame).data
        return ip if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) else None
    payload = frame[_IP_AFTER[linktype] :]
    version = payload[0] >> 4 if payload else 0
    if version == 4:
        return dpkt.ip.IP(payload)
    if version == 6:
        return dpkt.ip6.IP6(payload)
    return None


def _address(ip: dpkt.ip.IP | dpkt.ip6.IP6, raw: bytes, port: int) -> str:
    if isinstance(ip, dpkt.ip6.IP6):
        return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{port}"
    return f"{socket.inet_ntop(socket.AF_INET, raw)}:{port}"


# --- TCP streams ------------------------------------------------------------------


@dataclass
class Flow:
    """One direction of one TCP connection: its segments as captured."""

    first_seq: int | None = None  # sequence number of the first data byte, from the SYN
    segments: list[tuple[int, int, float, bytes]] = field(default_factory=list)  # seq, frame, time, data


@dataclass
class Connection:
    id: str  # "client:port>server:port", the client side first
    flows: dict[Direction, Flow] = field(default_factory=lambda: {C2S: Flow(), S2C: Flow()})


@dataclass
class Reassembled:
    chunks: list[tuple[float, bytes]]
    gap: Gap | None = None


def reassemble(flow: Flow) -> Reassembled:
    """The bytes of one direction in stream order, as timed chunks, up to the first hole."""
    if not flow.segments:
        return Reassembled([])
    base = flow.first_seq if flow.first_seq is not None else flow.segments[0][0]

    def relative(seq: int) -> int:
        # Signed distance from base modulo 2**32: survives sequence-number wraparound.
        return (seq - base + (1 << 31)) % _SEQ_MOD - (1 << 31)

    segments = sorted((relative(seq), frame, time, data) for seq, frame, time, data in flow.segments)
    # Without a SYN the capture may start mid-stream, or with a later segment first.
    start = 0 if flow.first_seq is not None else min(0, segments[0][0])
    chunks: list[tuple[float, bytes]] = []
    expected, clock = start, float("-inf")
    for index, (rel, _frame, time, data) in enumerate(segments):
        end = rel + len(data)
        if end <= expected:
            continue  # a retransmission or duplicate of bytes already taken
        if rel > expected:
            after = max(r + len(d) for r, _, _, d in segments[index:]) - rel  # captured span past the hole
            return Reassembled(chunks, Gap(expected - start, rel - expected, max(time, clock), after))
        clock = max(clock, time)
        chunks.append((clock, data[expected - rel :]))
        expected = end
    return Reassembled(chunks)


@dataclass
class Capture:
    connections: list[Connection]
    truncated: str | None = None
    frames: int = 0


def read_capture(data: bytes, port: int = DEFAULT_PORT) -> Capture:
    """The TCP connections on ``port`` in a pcap/pcapng capture, in order of first appearance.

    Client -> server is the direction whose destination port is ``port``. A new SYN
    with a fresh sequence number on a 4-tuple already seen starts a new connection
    (port reuse), numbered ``#2``, ``#3``... after the addresses.
    """
    frames = read_frames(data)
    connections: list[Connection] = []
    current: dict[tuple[str, str], Connection] = {}
    generation: dict[tuple[str, str], int] = {}
    for number, (time, frame) in enumerate(frames.frames):
        try:
            ip = _ip_packet(frames.linktype, frame)
        except (dpkt.UnpackError, struct.error, IndexError, ValueError):
            continue  # not IP, or mangled: not ours to judge
        tcp = getattr(ip, "data", None)
        if not isinstance(tcp, dpkt.tcp.TCP) or port not in (tcp.sport, tcp.dport):
            continue
        src, dst = _address(ip, ip.src, tcp.sport), _address(ip, ip.dst, tcp.dport)
        direction = C2S if tcp.dport == port else S2C
        key = (src, dst) if direction is C2S else (dst, src)
        syn = bool(tcp.flags & dpkt.tcp.TH_SYN)
        connection = current.get(key)
        if syn and direction is C2S and connection is not None:
            # A client SYN on a known 4-tuple: a retransmitted SYN if its sequence number
            # is the one we have, else the port was reused for a new connection.
            old = connection.flows[C2S].first_seq
            seen = old is not None or any(f.segments for f in connection.flows.values())
            if seen and old != (tcp.seq + 1) % _SEQ_MOD:
                connection = None
        if connection is None:
            generation[key] = generation.get(key, 0) + 1
            suffix = f"#{generation[key]}" if generation[key] > 1 else ""
            connection = current[key] = Connection(f"{key[0]}>{key[1]}{suffix}")
            connections.append(connection)
        flow = connection.flows[direction]
        seq = tcp.seq
        if syn:
            seq = (seq + 1) % _SEQ_MOD  # the SYN takes one sequence number; data follows it
            flow.first_seq = seq
        if tcp.data:
            flow.segments.append((seq, number, time, bytes(tcp.data)))
    return Capture(connections, frames.truncated, len(frames.frames))


def connection_records(connection: Connection, dialect: Dialect | None = None) -> list[Record]:
    """Both directions of one connection decoded, in time order."""
    records: list[Record] = []
    for direction in (C2S, S2C):
        stream = reassemble(connection.flows[direction])
        records += decode_chunks(connection.id, direction, stream.chunks, stream.gap, dialect)
    # sorted() is stable and each direction is already in time order, so this only
    # interleaves the two directions; a request stays before the reply it caused.
    return sorted(records, key=_time)


def capture_records(data: bytes, port: int = DEFAULT_PORT, dialect: Dialect | None = None) -> tuple[list[Record], Capture]:
    """Every LGMP record in a capture, all connections interleaved by time."""
    capture = read_capture(data, port)
    records: list[Record] = []
    for connection in capture.connections:
        records += connection_records(connection, dialect)
    return sorted(records, key=_time), capture


def _time(record: Record) -> float:
    return record.time if record.time is not None else float("-inf")


def iter_tcp_payloads(data: bytes, port: int = DEFAULT_PORT) -> Iterator[tuple[str, Direction, bytes]]:
    """Each connection's reassembled bytes per direction (for tests and ad-hoc checks)."""
    for connection in read_capture(data, port).connections:
        for direction in (C2S, S2C):
            yield connection.id, direction, b"".join(d for _, d in reassemble(connection.flows[direction]).chunks)
