"""lgmp-dump: show LGMP traffic packet by packet.

    lgmp-dump [--format auto|hex|raw|pcap] [--direction auto|client|server]
              [--port PORT] [--json] [--hex] [FILE ...]
    lgmp-dump tap --listen PORT --upstream HOST:PORT [--listen-host HOST] [--json] [--hex]

The work is split so the tests can reach every part without files or sockets:

* ``tools.dump_describe`` -- a packet in words (names, meanings);
* ``tools.dump_core``     -- bytes -> records -> lines (pure);
* ``tools.dump_capture``  -- pcap/pcapng -> reassembled TCP streams -> records;
* ``tools.dump_tap``      -- the live trio proxy;
* this module             -- the command line: reading inputs, printing, exit codes.

``dump_input`` is the CLI's pure entry point: one input's bytes in, its records and
messages out. Exit codes: 0 everything decoded, 1 some input undecodable (or a
capture with no LGMP packet in it), 2 a usage or file error (the other inputs are
still dumped), 130 stopped by Ctrl-C. With no FILE and a terminal for stdin there is
nothing to read: that is a usage error, not a silent wait.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from lgmp.wire.codec import Dialect
from lgmp.wire.dialects import DIALECTS
from lgmp.wire.packets import Direction

from .dump_capture import DEFAULT_PORT, CaptureError, capture_kind, capture_records
from .dump_core import (
    C2S,
    S2C,
    ErrorRecord,
    HexError,
    PacketRecord,
    Record,
    choose_direction,
    decode_bytes,
    format_json,
    format_record,
    format_text,
    looks_like_hex,
    parse_hex,
)
from .dump_describe import describe
from .dump_tap import TapStats, run_tap, serve_tap

__all__ = [
    "DumpResult",
    "ErrorRecord",
    "PacketRecord",
    "capture_records",
    "choose_direction",
    "decode_bytes",
    "describe",
    "dump_input",
    "format_json",
    "format_record",
    "format_text",
    "main",
    "parse_hex",
    "run_tap",
    "serve_tap",
    "TapStats",
]

PROG = "lgmp-dump"
OK, UNDECODABLE, USAGE = 0, 1, 2
INTERRUPTED = 130  # the shells' status for a program stopped by SIGINT (128 + 2)
DIRECTIONS = {"client": C2S, "server": S2C, "auto": None}


@dataclass
class DumpResult:
    """One input dumped: its records, messages for stderr, and its exit status."""

    records: list[Record] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    status: int = OK


def dump_input(
    data: bytes,
    *,
    fmt: str = "auto",
    direction: Direction | None = None,
    port: int = DEFAULT_PORT,
    stream: str = "#1",
    dialect: Dialect | None = None,
) -> DumpResult:
    """Dump one input (a file's or stdin's bytes).

    ``fmt`` ``auto`` picks pcap/pcapng by magic, then hex if the input is hex text,
    else raw bytes. ``direction`` None (auto) decodes hex/raw input both ways and keeps
    the one that fits; captures know each packet's direction from the ports.
    ``dialect``: what the traffic speaks (v1.0 unless said).
    """
    result = DumpResult()
    kind = fmt
    if fmt == "auto":
        kind = "pcap" if capture_kind(data) else "hex" if looks_like_hex(data) else "raw"

    if kind == "pcap":
        try:
            records, capture = capture_records(data, port, dialect)
        except CaptureError as exc:
            return DumpResult(messages=[str(exc)], status=USAGE)
        result.records = records
        if capture.truncated:
            result.messages.append(capture.truncated)
            result.status = UNDECODABLE
        if not capture.connections:
            result.messages.append(f"no TCP traffic on port {port} in {capture.frames} frames (try --port)")
        if not any(isinstance(r, PacketRecord) for r in records):
            result.status = max(result.status, UNDECODABLE)  # nothing decoded is not a success
    else:
        odd_digit = None
        if kind == "hex":
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError as exc:
                return DumpResult(messages=[f"not hex text: non-ASCII byte at offset {exc.start}"], status=USAGE)
            try:
                parsed = parse_hex(text)
            except HexError as exc:
                return DumpResult(messages=[f"not hex text: {exc}"], status=USAGE)
            data, odd_digit = parsed.data, parsed.odd_digit
        if not data and odd_digit is None:
            result.messages.append("empty input: no bytes to decode")
            return result
        if direction is None:
            choice = choose_direction(stream, data, dialect)
            result.records = choice.records
            result.messages.append(f"--direction auto {choice.explanation}")
            direction = choice.direction
        else:
            result.records = decode_bytes(stream, direction, data, dialect)
        if odd_digit is not None:
            reason = f"odd number of hex digits: the last digit {odd_digit!r} is not a whole byte"
            result.records.append(ErrorRecord(stream, direction, len(data), reason))

    if any(isinstance(r, ErrorRecord) for r in result.records):
        result.status = max(result.status, UNDECODABLE)
    return result


# --- command line ----------------------------------------------------------------------

_EPILOG = f"""\
live tap:
  {PROG} tap --listen PORT --upstream HOST:PORT [--listen-host HOST] [--json] [--hex]
      a transparent proxy: forwards bytes untouched both ways and prints every packet
      as it passes (see '{PROG} tap --help')

output: one line per packet -- time (UTC, captures) or @offset (hex/raw), stream,
direction (c>s / s>c), tag and fields with their meanings. Undecodable bytes are shown
with the codec's reason, tag and offset; the dump goes on with the next stream.

exit status: 0 everything decoded, 1 some input undecodable or a capture without LGMP,
2 usage or file error, 130 stopped by Ctrl-C.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dump LGMP packets from hex text, raw bytes, stdin or pcap/pcapng captures.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="inputs; '-' or none reads stdin")
    parser.add_argument(
        "--format",
        choices=("auto", "hex", "raw", "pcap"),
        default="auto",
        help="input format (default auto: pcap/pcapng by magic, hex if the text is hex, else raw); "
        "hex tolerates whitespace, commas, colons, 0x prefixes and # comments",
    )
    parser.add_argument(
        "--direction",
        choices=tuple(DIRECTIONS),
        default="auto",
        help="who sent hex/raw bytes: client (c>s), server (s>c) or auto (try both, keep the one that "
        "decodes the whole input; the choice is reported on stderr). Captures use the ports.",
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"LGMP TCP port in captures (default {DEFAULT_PORT})")
    _output_options(parser)
    return parser


def build_tap_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} tap",
        description="Transparent TCP proxy that prints every LGMP packet passing through it. "
        "Bytes are forwarded untouched; a decode error is printed and that direction is then "
        "forwarded without decoding. Stop with Ctrl-C.",
    )
    parser.add_argument("--listen", type=_port, required=True, metavar="PORT", help="port to accept clients on")
    parser.add_argument("--listen-host", default="127.0.0.1", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--upstream", type=_host_port, required=True, metavar="HOST:PORT", help="the real LGMP server")
    _output_options(parser)
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dialect",
        choices=tuple(DIALECTS),
        default="v1.0",
        help="what the traffic speaks: v1.0 (default) or unity-2022, the game's Unity client (PROTOCOL.md chapter 12)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    parser.add_argument("--hex", action="store_true", help="show each packet's bytes beside it")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host.strip("[]"), _port(port)  # [::1]:1111 -> ::1


def _warn(name: str | None, message: str) -> None:
    where = f"{name}: " if name else ""
    print(f"{PROG}: {where}{message}", file=sys.stderr)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # replaced, closed or detached stdin
        return False


def _dump_files(args: argparse.Namespace) -> int:
    if not args.files and _stdin_is_a_terminal():
        _warn(None, "no input: give a FILE (hex, raw bytes, pcap or pcapng), pipe bytes in, "
                    f"or '-' to type hex (see '{PROG} --help')")
        return USAGE
    names = args.files or ["-"]
    status = OK
    hex_raw_streams = 0
    for name in names:
        label = "stdin" if name == "-" else name
        try:
            data = _read(name)
        except OSError as exc:
            _warn(label, f"cannot read: {exc.strerror or exc}")
            status = max(status, USAGE)
            continue
        if args.format != "pcap" and not (args.format == "auto" and capture_kind(data)):
            hex_raw_streams += 1  # hex/raw inputs are one stream each: #1, #2, ...
        result = dump_input(
            data, fmt=args.format, direction=DIRECTIONS[args.direction], port=args.port, stream=f"#{hex_raw_streams}",
            dialect=DIALECTS[args.dialect],
        )
        for message in result.messages:
            _warn(None if names == ["-"] else label, message)
        for record in result.records:
            print(format_record(record, as_json=args.json, show_hex=args.hex))
        sys.stdout.flush()
        status = max(status, result.status)
    return status


def _tap(args: argparse.Namespace) -> int:
    def emit(record: Record) -> None:
        print(format_record(record, as_json=args.json, show_hex=args.hex), flush=True)

    async def tap() -> str | None:
        try:
            listeners = await trio.open_tcp_listeners(args.listen, host=args.listen_host)
        except OSError as exc:
            return f"cannot listen on {args.listen_host}:{args.listen}: {exc.strerror or exc}"
        host, port = args.upstream
        listening = listeners[0].socket.getsockname()[1]  # the real one when --listen 0
        _warn(None, f"tapping {args.listen_host}:{listening} -> {host}:{port} (Ctrl-C to stop)")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: serve_tap(listeners, args.upstream, emit, dialect=DIALECTS[args.dialect]))
            # Stop cleanly on Ctrl-C / SIGTERM rather than with a traceback.
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break
        return None

    error = trio.run(tap)
    if error:
        _warn(None, error)
        return USAGE
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["tap"]:
            return _tap(build_tap_parser().parse_args(argv[1:]))
        return _dump_files(build_parser().parse_intermixed_args(argv))
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
