"""One client connection, sans-IO: bytes in, packets out; bytes queued, bytes taken.

Theory of operation
-------------------
In the manner of h11's ``Connection``, this object knows everything about one
client's byte stream and nothing about sockets, tasks or clocks. The shell
feeds it what the socket read (``receive_data(data, now)``, ``b""`` at EOF) and
takes the packets those bytes completed one by one (``next_packet``); it queues what the core sends
(``send``) and writes what ``data_to_send`` returns, reporting how much the
socket took (``bytes_sent``). Time is passed in: ``next_deadline()`` tells when
the connection next needs looking at -- ``read_deadline()``, when a partial
packet times out (``handle_timer(now)`` does that), or ``send_deadline()``, when
the next paced packet may be written. The shell's poller times out the first,
its flusher waits on the second.

What it owns:

* **Framing**: a client-to-server ``Decoder``; bytes that are not LGMP end the
  connection (without a length prefix there is no resynchronising). Packets
  decoded before the bad bytes are still returned, in order.
* **Packet timeout** (slowloris): a started packet must complete within
  ``packet_timeout`` of its first byte; the clock does not restart while the
  same packet trickles in.
* **Send-queue bound**: more than ``send_queue`` unsent packets means the peer
  stopped reading; the connection closes rather than let it slow its room.
* **Commit hold**: ``hold(token)`` keeps everything queued after it until
  ``release(token)`` -- a FINL waits there until its game is stored.
* **Pacing** (``gap`` > 0, for clients that act on the first packet of each read
  only, like the Unity client): ``data_to_send(now)`` gives one packet at a time
  and none until ``gap`` after the previous one was fully written;
  ``send_deadline()`` says when the next may go. A packet sent as a *snapshot*
  (``send(..., snapshot=key)``) replaces any unsent one of the same key, so only
  the latest state waits in the queue.

A connection ends in one of two ways, and ``closing`` then holds the reason:

* the core closed it (``close(reason)``): the core already knows, and what was
  queued before (an RSET, say) is still flushed;
* it ended on its own side -- EOF, bad bytes, a packet timeout, a write that
  failed, a full send queue (``lost`` is then True): the shell must tell the
  core (``Hub.disconnect``), once, after the batch it is carrying out.

Nothing here calls back into anything: every change is a return value or an
attribute the caller reads.
"""

from __future__ import annotations

from collections.abc import Hashable

from ..limits import Limits
from ..wire.codec import BadBytes, Decoder, Dialect
from ..wire.packets import ClientPacket, Direction


class Connection:
    __slots__ = (
        "member", "peer", "closing", "lost", "_limits", "_decoder", "_eof",
        "_partial_at", "_partial_since", "_now", "_out", "_queued",
        "_gap", "_send_at", "_head_started", "_holds", "_taken",
    )

    def __init__(self, member: int, *, limits: Limits, peer: str = "?", dialect: Dialect | None = None, gap: float = 0.0):
        self.member = member
        self.peer = peer  # the client's address, for log lines
        self.closing: str | None = None  # why it is closing, once it is
        self.lost = False  # it ended on its own side: the core has yet to be told
        self._limits = limits
        self._decoder = Decoder(Direction.CLIENT_TO_SERVER, dialect=dialect)
        self._eof = False  # the peer closed; closing is set once the packets before it are taken
        self._partial_at = -1  # stream offset of the partial packet the clock runs for
        self._partial_since = 0.0
        self._now = 0.0  # when the latest bytes arrived
        # What the socket has not taken yet, in order: (bytes, packet count, snapshot
        # key) items, and hold tokens (ints) that keep everything behind them until released.
        self._out: list = []
        self._queued = 0  # packets in _out: always the sum of its items' counts
        self._gap = gap  # seconds between two packets written; 0: as fast as the socket takes them
        self._send_at: float | None = None  # paced: when the next packet may be written (None: at once)
        self._head_started = False  # the first item is partly written: it is on the wire
        self._holds = 0  # hold tokens in _out
        self._taken: list | tuple | None = None  # what the latest take() took (one item: itself), until the next

    @property
    def dialect(self) -> Dialect:
        """What the peer speaks: its packets are decoded with this."""
        return self._decoder.dialect

    @property
    def paced(self) -> bool:
        return self._gap > 0

    # --- bytes in ----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """The next bytes read from the socket (``b""``: the peer closed).

        Take the packets they complete with ``next_packet``; after ``b""`` it
        returns those received before, then sets ``closing``.
        """
        if self.closing is not None or self._eof:
            return
        if not data:
            self._eof = True
            return
        self._decoder.receive_data(data)
        self._now = now

    def next_packet(self) -> ClientPacket | None:
        """The next whole packet received, or None when there is none (yet).

        Bytes that are not LGMP set ``closing`` -- after every packet before them
        has been taken, so the core sees those first.
        """
        if self.closing is not None:
            return None
        decoder = self._decoder
        item = decoder.take_packet()
        if item is None:
            if self._eof:
                self._lose("peer closed" if not decoder.buffered else "peer closed inside a packet")
                return None
            if decoder.buffered and decoder.offset != self._partial_at:
                self._partial_at, self._partial_since = decoder.offset, self._now
            return None
        if type(item) is BadBytes:
            self._lose(f"bad bytes: {item.error()}")
            return None
        return item

    def read_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called: the partial packet's deadline."""
        if self.closing is None and not self._eof and self._decoder.buffered:
            return self._partial_since + self._limits.packet_timeout
        return None

    def send_deadline(self) -> float | None:
        """Paced: when the next queued packet may be written (None: at once, or nothing
        waits). It may be in the past: then it may go now."""
        if self._gap and self.wants_write and not self._head_started:
            return self._send_at
        return None

    def next_deadline(self) -> float | None:
        """When the connection next needs the shell: a partial packet times out
        (``handle_timer``), or the next paced packet may be written."""
        read, send = self.read_deadline(), self.send_deadline()
        if read is None or send is None:
            return send if read is None else read
        return min(read, send)

    def handle_timer(self, now: float) -> None:
        deadline = self.read_deadline()
        if deadline is not None and now >= deadline:
            self._lose(f"packet not completed within {self._limits.packet_timeout:g} s")

    # --- bytes out ----------------------------------------------------------------

    def send(self, data: bytes, packets: int = 1, snapshot: Hashable | None = None) -> None:
        """Queue ``data``, which holds ``packets`` whole packets (a paced connection
        writes each ``send`` on its own: give it one packet at a time).

        ``snapshot``: the packet is a whole state of its kind; an unsent packet sent
        with the same key is superseded, and only this one waits.
        """
        if self.closing is not None:
            return
        if snapshot is not None:
            self._drop_superseded(snapshot)
        self._queued += packets
        if self._queued > self._limits.send_queue:
            self._lose(f"send queue full ({self._limits.send_queue} packets)", flush=False)
            return
        self._out.append((data, packets, snapshot))

    def _drop_superseded(self, snapshot: Hashable) -> None:
        out, keep = self._out, []
        for index, item in enumerate(out):
            if type(item) is tuple and item[2] == snapshot and not (index == 0 and self._head_started):
                self._queued -= item[1]
            else:
                keep.append(item)
        if len(keep) != len(out):
            self._out = keep

    def data_to_send(self, now: float | None = None) -> bytes:
        """What may be written now: everything queued up to the first hold.

        Paced (``now`` required): the first packet alone, once ``gap`` has passed
        since the one before it was fully written (the rest of a packet the socket
        took in part goes at once).
        """
        out = self._out
        if not out or not type(out[0]) is tuple:
            return b""
        if self._gap:
            if now is None:
                raise TypeError("a paced connection needs now")
            if not self._head_started and self._send_at is not None and now < self._send_at:
                return b""
            return out[0][0]
        if len(out) == 1:
            return out[0][0]
        chunk = []
        for item in out:
            if not type(item) is tuple:
                break
            chunk.append(item[0])
        return b"".join(chunk)

    def take(self) -> bytes | None:
        """The fast lane for an unpaced connection with nothing held: everything
        queued, taken off the queue on the understanding that the socket takes it
        all (if it does not, ``put_back(count)`` with what it took). None when the
        connection is paced or holds something: use ``data_to_send``."""
        if self._gap or self._holds:
            return None
        out = self._out
        if not out:
            return b""
        self._taken = out if len(out) > 1 else out[0]  # only for put_back: an item alone, usually
        self._out = []
        self._queued = 0
        self._head_started = False
        if len(out) == 1:
            return out[0][0]
        return b"".join([item[0] for item in out])

    def put_back(self, count: int) -> None:
        """The socket took only ``count`` bytes of what ``take`` returned: the rest goes
        back to the head of the queue, counted as before."""
        taken, self._taken = self._taken, None
        if type(taken) is tuple:
            taken = [taken]
        self._out[:0] = taken
        self._queued += sum(item[1] for item in taken)
        self.bytes_sent(count)

    def bytes_sent(self, count: int, now: float | None = None) -> None:
        """The socket took ``count`` bytes of what ``data_to_send`` returned (at ``now``,
        which a paced connection needs: the next packet waits ``gap`` from then)."""
        out = self._out
        while count > 0:
            item = out[0]
            data = item[0]
            if count >= len(data):
                count -= len(data)
                self._queued -= item[1]
                del out[0]
                self._head_started = False
                if self._gap:
                    self._send_at = now + self._gap
            else:  # a packet counts until it is fully written
                out[0] = (data[count:], item[1], item[2])
                count = 0
                self._head_started = True

    def send_failed(self, reason: str) -> None:
        """Writing to the socket failed: nothing more will be written."""
        self._lose(f"write failed: {reason}", flush=False)

    def abort(self, reason: str) -> None:
        """The transport ended for a reason of its own (a read failed, a bug): close,
        after flushing what is queued if the socket still takes it."""
        self._lose(reason)

    @property
    def queued_packets(self) -> int:
        return self._queued

    @property
    def wants_write(self) -> bool:
        """Bytes are queued and nothing holds them."""
        return bool(self._out) and type(self._out[0]) is tuple

    @property
    def pending(self) -> bool:
        """Anything is queued, held or not."""
        return bool(self._out)

    @property
    def holds(self) -> tuple[int, ...]:
        """The hold tokens still in the queue."""
        return tuple(item for item in self._out if not type(item) is tuple)

    @property
    def held(self) -> bool:
        """Queued bytes wait behind a commit hold."""
        return bool(self._out) and not type(self._out[0]) is tuple

    def hold(self, token: int) -> None:
        """Keep everything queued after this point until ``release(token)``."""
        if self.closing is not None:
            return  # nothing can be queued behind it: it would only keep the connection pending
        self._out.append(token)
        self._holds += 1

    def release(self, token: int) -> None:
        kept = [item for item in self._out if type(item) is tuple or item != token]
        self._holds -= len(self._out) - len(kept)
        self._out = kept

    # --- closing -------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """The core closes this connection: flush what is queued, then close."""
        if self.closing is None:
            self.closing = reason

    def _lose(self, reason: str, *, flush: bool = True) -> None:
        if self.closing is None:
            self.closing = reason
            self.lost = True
        if not flush:
            self._out.clear()
            self._queued = 0
            self._holds = 0
            self._head_started = False
