"""``lgmp serve --http`` as a process: it prints where HTTP is, ``lgmp rooms`` lists its
rooms from the API, the admin token comes from a file, and SIGTERM still exits 0."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import trio

from lgmp.clients.client import LGMPClient
from lgmp.http.rooms_cli import format_rooms, run_rooms


def test_serve_with_http_and_lgmp_rooms(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "serve", "--port", "0", "--http", "127.0.0.1:0", "--no-db",
         "--admin-token-file", str(token_file)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(re.search(r"LGMP server on [^:]+:(\d+)", server.stdout.readline()).group(1))
        url = re.search(r"HTTP on (http://\S+)", server.stdout.readline()).group(1)

        async def open_room() -> tuple[LGMPClient, str]:
            client = await LGMPClient.connect("127.0.0.1", port)
            return client, await client.host_room()

        async def scenario() -> None:
            host, code = await open_room()
            listed = await trio.to_thread.run_sync(lambda: subprocess.run(
                [sys.executable, "-m", "lgmp.cli", "rooms", "--url", url], capture_output=True, text=True, timeout=30))
            assert listed.returncode == 0, listed.stderr
            assert re.search(rf"^{code}\s+lobby\s+-\s+\d{{4}}-\d\d-\d\d", listed.stdout, re.M), listed.stdout
            request = urllib.request.Request(f"{url}/api/rooms/{code}", method="DELETE",
                                             headers={"Authorization": "Bearer from-a-file"})
            answer = await trio.to_thread.run_sync(lambda: urllib.request.urlopen(request, timeout=10))
            assert json.load(answer) == {"closed": code}
            await host.aclose()

        trio.run(scenario)
        lines = []
        assert run_rooms(url, out=lines.append) == 0 and lines == ["no rooms"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_lgmp_rooms_formats_seats_and_reports_an_unreachable_server(capsys):
    rows = format_rooms([{"code": "ABCD", "phase": "game", "turn": 2, "created": "2026-01-02T03:04:05Z",
                          "seats": [{"seat": 1, "name": "Ann", "avatar_name": "Red", "absent": False},
                                    {"seat": 2, "name": "Bo", "avatar_name": "Blue", "absent": True}]}])
    assert rows[1] == "ABCD  game      2  2026-01-02 03:04:05  1:Ann (Red), 2:Bo (Blue) away"
    assert run_rooms("http://127.0.0.1:9") == 1
    assert "cannot read http://127.0.0.1:9/api/rooms" in capsys.readouterr().err
