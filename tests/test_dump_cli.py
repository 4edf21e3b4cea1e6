"""``lgmp-dump`` with nothing to read, and with a capture that holds no LGMP: exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

from tools import dump

from .test_dump import ACK, SYN, T0, tcp_frame, write_pcap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_no_argument_on_a_terminal_is_a_usage_error_not_a_silent_wait():
    controller, terminal = os.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "tools.dump"], cwd=ROOT, stdin=terminal, capture_output=True,
                              text=True, timeout=20)
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("lgmp-dump: no input: give a FILE")


def test_a_capture_without_lgmp_is_not_a_success(tmp_path, capsys):
    web = tmp_path / "web.pcap"
    client, server = ("10.0.0.1", 50000), ("10.0.0.9", 80)
    web.write_bytes(write_pcap([(T0, tcp_frame(client, server, 1, b"GET / HTTP/1.1\r\n\r\n"))]))
    assert dump.main([str(web)]) == 1
    assert "no TCP traffic on port 1111" in capsys.readouterr().err

    handshake_only = tmp_path / "syn.pcap"
    lgmp_server = ("10.0.0.9", 1111)
    handshake_only.write_bytes(write_pcap([(T0, tcp_frame(client, lgmp_server, 1, flags=SYN)),
                                           (T0 + 0.001, tcp_frame(lgmp_server, client, 9, flags=SYN | ACK))]))
    assert dump.main([str(handshake_only)]) == 1
