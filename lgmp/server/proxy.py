"""The PROXY protocol, version 2 (binary), sans-IO: who the client really is behind a relay.

A relay or load balancer that accepts the client's TCP connection and opens its
own to us can put a PROXY v2 header first on that connection, naming the
client's address. With ``lgmp serve --proxy-protocol`` every connection must
begin with one; its source is then what the per-source limits count and what
log lines show. Without the option a header is simply not LGMP (bad bytes).

Only turn it on for a listener that nothing but the relay can reach: whoever
can write the header can claim any address.

The header (haproxy's proxy-protocol.txt, section 2.2)::

    12 bytes  signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
    1 byte    version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
    1 byte    family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
              | transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
    2 bytes   length of what follows, big-endian
    INET:     source address 4, destination address 4, source port 2, destination port 2
    INET6:    source address 16, destination address 16, source port 2, destination port 2
    UNIX:     source path 108, destination path 108
    then TLVs up to the length (skipped)

``parse_proxy_v2(buf)`` reads one from the start of ``buf``; ``build_proxy_v2``
writes one (for relays, and tests). A LOCAL header (the relay's own health
check) and an UNSPEC or UNIX family carry no client address: the source is
then None and the caller keeps the socket's own peer address.
"""

from __future__ import annotations

import ipaddress
import struct

from ..wire.errors import LGMPError

__all__ = ["SIGNATURE", "MAX_HEADER", "ProxyHeaderError", "Address", "parse_proxy_v2", "build_proxy_v2"]

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_FIXED = len(SIGNATURE) + 4  # signature, version/command, family/transport, length
# The addresses take at most 216 bytes (UNIX); TLVs follow. Relays send a few
# TLVs at most; a header claiming more than this is not one we will buffer.
MAX_HEADER = _FIXED + 1024

_LOCAL, _PROXY = 0, 1
_UNSPEC, _INET, _INET6, _UNIX = 0, 1, 2, 3
_STREAM = 1
_INET_BODY = struct.Struct("!4s4sHH")
_INET6_BODY = struct.Struct("!16s16sHH")

Address = tuple[str, int]  # (IP address as text, port)


class ProxyHeaderError(LGMPError):
    """The bytes are not a PROXY v2 header we accept; the connection must be closed."""


def parse_proxy_v2(buf: bytes | bytearray | memoryview) -> tuple[int, Address | None] | None:
    """Read a PROXY v2 header at the start of ``buf``.

    Returns ``(consumed, source)`` -- how many bytes the header took and the client's
    ``(host, port)`` (None for LOCAL, UNSPEC or UNIX: keep the socket's address) --
    or None while ``buf`` holds only the start of a header (read more, then call
    again with everything). Raises ``ProxyHeaderError`` as soon as the bytes cannot
    be a header: a wrong signature (even a partial one), another version, an
    unknown command or family, an address block too short, a header too long.
    """
    data = bytes(buf[:MAX_HEADER])
    prefix = data[: len(SIGNATURE)]
    if prefix != SIGNATURE[: len(prefix)]:
        raise ProxyHeaderError("not a PROXY v2 header (wrong signature)")
    if len(data) < _FIXED:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = int.from_bytes(data[14:16], "big")
    if version != 2:
        raise ProxyHeaderError(f"PROXY protocol version {version}, not 2")
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"unknown PROXY command {command}")
    if family > _UNIX or transport > 2:
        raise ProxyHeaderError(f"unknown PROXY address family/transport 0x{data[13]:02x}")
    if _FIXED + length > MAX_HEADER:
        raise ProxyHeaderError(f"PROXY header of {_FIXED + length} bytes (at most {MAX_HEADER})")
    if len(data) < _FIXED + length:
        return None
    consumed = _FIXED + length
    body = data[_FIXED:consumed]
    if command == _LOCAL or family in (_UNSPEC, _UNIX):
        return consumed, None  # no client address: the relay's own connection, or a path
    layout = _INET_BODY if family == _INET else _INET6_BODY
    if len(body) < layout.size:
        raise ProxyHeaderError(f"PROXY {'INET' if family == _INET else 'INET6'} address block too short ({len(body)} bytes)")
    source, _, source_port, _ = layout.unpack_from(body)
    host = ipaddress.IPv4Address(source) if family == _INET else ipaddress.IPv6Address(source)
    return consumed, (str(host), source_port)


def build_proxy_v2(src: Address, dst: Address) -> bytes:
    """A PROXY v2 header (command PROXY, TCP) saying a client at ``src`` connected to ``dst``.
    Both must be of one family (IPv4 or IPv6)."""
    src_ip, dst_ip = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if src_ip.version != dst_ip.version:
        raise ValueError(f"source {src[0]} and destination {dst[0]} are not of one address family")
    family, layout = (_INET, _INET_BODY) if src_ip.version == 4 else (_INET6, _INET6_BODY)
    body = layout.pack(src_ip.packed, dst_ip.packed, src[1], dst[1])
    return SIGNATURE + bytes([0x20 | _PROXY, family << 4 | _STREAM]) + len(body).to_bytes(2, "big") + body
