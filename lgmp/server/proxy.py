"""The PROXY protocol version 2 header: a relayed connection's real client address.

A connection that reaches a room's owner through a relay (``lgmp.server.relay``),
or through a load balancer such as HAProxy with ``send-proxy-v2``, would look as
if it came from the relay. The relay therefore starts the connection with the
binary header of HAProxy's PROXY protocol v2
(https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, section 2.2), and
the owner takes the client's address from it, so every per-client limit and log
line sees the client, not the relay. Only the layout below is produced; parsing
accepts any well-formed v2 header and skips its TLVs.

    offset  size  field
    0       12    signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
    12      1     0x21 (version 2, command PROXY) or 0x20 (command LOCAL)
    13      1     family and transport: 0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 unspecified
    14      2     length of what follows, big-endian
    16      12    IPv4: source address, destination address (4 bytes each), source port, destination port
         or 36    IPv6: the same with 16-byte addresses

Trust: the header says whatever its sender wants, so a server honours it only on
a listener that nobody but its relays can reach (the worker's local socket), never
on the public port, where those bytes are not LGMP and close the connection.

Pure: bytes in, values out.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_FIXED = len(SIGNATURE) + 4  # signature, version/command, family, length
_VERSION = 0x2
_LOCAL, _PROXY = 0x0, 0x1
_TCP4, _TCP6, _UNSPEC = 0x11, 0x21, 0x00
_ADDRESS_SIZE = {_TCP4: 12, _TCP6: 36}

#: The longest header accepted. Ours are 28 or 52 bytes; a proxy's TLVs (SSL details,
#: unique ids) add a few hundred at most. Anything longer is not worth waiting for.
MAX_HEADER = 1024

#: An address: (host, port).
Address = tuple[str, int]


class ProxyHeaderError(ValueError):
    """The bytes start a PROXY v2 header that is not valid (or too long)."""


def parse_proxy_v2(buf: bytes | bytearray | memoryview) -> tuple[int, Address | None] | None:
    """Parse a PROXY v2 header at the start of ``buf``.

    Returns ``(consumed, source)``: the header's size and the client's address, or
    ``source`` None when the header carries none (command LOCAL -- a health check --
    or an unspecified or non-TCP family): the connection's own peer address stands.
    Returns None while ``buf`` is a prefix of a header (wait for more bytes).
    Raises ``ProxyHeaderError`` when ``buf`` does not start with a valid header.
    """
    buf = bytes(buf[:MAX_HEADER])
    head = buf[: len(SIGNATURE)]
    if head != SIGNATURE[: len(head)]:
        raise ProxyHeaderError("no PROXY v2 signature")
    if len(buf) < _FIXED:
        return None
    version_command, family, length = buf[12], buf[13], int.from_bytes(buf[14:16], "big")
    if version_command >> 4 != _VERSION:
        raise ProxyHeaderError(f"PROXY protocol version {version_command >> 4}, not 2")
    command = version_command & 0x0F
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"unknown PROXY v2 command {command}")
    if _FIXED + length > MAX_HEADER:
        raise ProxyHeaderError(f"a PROXY v2 header of {_FIXED + length} bytes (at most {MAX_HEADER})")
    if len(buf) < _FIXED + length:
        return None
    consumed = _FIXED + length
    if command == _LOCAL or family not in _ADDRESS_SIZE:
        return consumed, None
    if length < _ADDRESS_SIZE[family]:
        raise ProxyHeaderError(f"a PROXY v2 address block of {length} bytes for family 0x{family:02x}")
    body = buf[_FIXED:]
    if family == _TCP4:
        source = str(ipaddress.IPv4Address(body[0:4]))
        (port,) = struct.unpack_from(">H", body, 8)
    else:
        v6 = ipaddress.IPv6Address(body[0:16])
        source = str(v6.ipv4_mapped or v6)  # an IPv4 client behind an IPv6 hop is an IPv4 client
        (port,) = struct.unpack_from(">H", body, 32)
    return consumed, (source, port)


def build_proxy_v2(src: Address, dst: Address) -> bytes:
    """The header for a TCP connection from ``src`` to ``dst`` (command PROXY).

    IPv4 when both addresses are IPv4; otherwise IPv6, with an IPv4 address written
    as its IPv4-mapped IPv6 form.
    """
    source, destination = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if source.version == destination.version == 4:
        family, packed = _TCP4, source.packed + destination.packed
    else:
        family, packed = _TCP6, _as_v6(source).packed + _as_v6(destination).packed
    body = packed + struct.pack(">HH", src[1], dst[1])
    return SIGNATURE + bytes([_VERSION << 4 | _PROXY, family]) + len(body).to_bytes(2, "big") + body


def _as_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    if address.version == 6:
        return address
    return ipaddress.IPv6Address("::ffff:" + str(address))
