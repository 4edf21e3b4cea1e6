"""``lgmp.server.proxy``: the PROXY protocol v2 header a relay sends its owner."""

from __future__ import annotations

import pytest

from lgmp.server.proxy import MAX_HEADER, SIGNATURE, ProxyHeaderError, build_proxy_v2, parse_proxy_v2

# The spec's layout, byte by byte: TCP over IPv4 from 192.0.2.7:51000 to 127.0.0.1:1111.
IPV4_HEADER = bytes.fromhex(
    "0d0a0d0a000d0a515549540a"  # signature
    "21"  # version 2, command PROXY
    "11"  # TCP over IPv4
    "000c"  # 12 bytes follow
    "c0000207" "7f000001"  # source, destination address
    "c738" "0457"  # source port 51000, destination port 1111
)


def test_ipv4_header_matches_the_specification_byte_for_byte():
    assert build_proxy_v2(("192.0.2.7", 51000), ("127.0.0.1", 1111)) == IPV4_HEADER
    assert parse_proxy_v2(IPV4_HEADER + b"JOIN") == (28, ("192.0.2.7", 51000))


@pytest.mark.parametrize(
    "src,dst,expected",
    [
        (("2001:db8::1", 443), ("::1", 1111), ("2001:db8::1", 443)),
        (("10.1.2.3", 7), ("::1", 1111), ("10.1.2.3", 7)),  # mixed: sent IPv4-mapped, read back as IPv4
    ],
)
def test_ipv6_round_trip(src, dst, expected):
    header = build_proxy_v2(src, dst)
    assert header[13] == 0x21 and len(header) == 16 + 36
    assert parse_proxy_v2(header) == (len(header), expected)


def test_every_prefix_of_a_header_asks_for_more_bytes():
    for size in range(len(IPV4_HEADER)):
        assert parse_proxy_v2(IPV4_HEADER[:size]) is None


def test_local_command_and_unspecified_family_carry_no_address_and_tlvs_are_skipped():
    local = SIGNATURE + bytes([0x20, 0x00]) + (0).to_bytes(2, "big")
    assert parse_proxy_v2(local + b"JOIN") == (16, None)
    with_tlv = SIGNATURE + bytes([0x21, 0x11]) + (12 + 5).to_bytes(2, "big") + IPV4_HEADER[16:] + b"\x04\x00\x02hi"
    assert parse_proxy_v2(with_tlv) == (33, ("192.0.2.7", 51000))
    unix = SIGNATURE + bytes([0x21, 0x31]) + (216).to_bytes(2, "big") + bytes(216)
    assert parse_proxy_v2(unix) == (232, None)


@pytest.mark.parametrize(
    "data",
    [
        b"JOINHOST",  # LGMP, not a header
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4),  # a bad signature
        SIGNATURE + bytes([0x11, 0x11, 0, 12]) + bytes(12),  # version 1
        SIGNATURE + bytes([0x22, 0x11, 0, 12]) + bytes(12),  # unknown command
        SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),  # IPv4 with a short address block
        SIGNATURE + bytes([0x21, 0x11]) + (MAX_HEADER).to_bytes(2, "big"),  # longer than we wait for
    ],
)
def test_invalid_headers_are_refused(data):
    with pytest.raises(ProxyHeaderError):
        parse_proxy_v2(data)
