"""Network peers that misbehave on purpose: a port nothing listens on, a listener
that never answers, and an HTTP server standing in for STS that answers as a
test plans (STS errors, sessions of its own making) or passes requests on to
the bed.

Stdlib only.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from html import escape as xml_escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Blackhole:
    """A TCP (or Unix) listener that accepts connections and never answers."""

    def __init__(self, unix_path: str | None = None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = unix_path
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.address = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for c in self.accepted:
            c.close()
        self.sock.close()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def sts_error_xml(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    ).encode()


def session_token_response(token: str, seconds: int = 12 * 3600) -> bytes:
    """A GetSessionToken answer with a made-up session whose token is `token`,
    expiring `seconds` from now (a plausible session: stsmfa refuses others)."""
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
    return (
        '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetSessionTokenResult><Credentials>"
        f"<AccessKeyId>ASIAFAKEFAKEFAKE1234</AccessKeyId>"
        f"<SecretAccessKey>fakeSecretKey/fake+fake=</SecretAccessKey>"
        f"<SessionToken>{xml_escape(token, quote=False)}</SessionToken>"
        f"<Expiration>{expiration}</Expiration>"
        "</Credentials></GetSessionTokenResult>"
        "<ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>"
        "</GetSessionTokenResponse>"
    ).encode()


class FakeEndpoint:
    """An HTTP server standing in for STS. `plan(n, action)` decides the n-th
    request (from 1): a (status, body) tuple to answer with, or "forward" to
    pass it unchanged (Host header included, so SigV4 still matches) to
    `forward_to`."""

    def __init__(self, plan: Callable[[int, str], Any], forward_to: str | None = None):
        self.plan = plan
        self.forward_to = forward_to
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                n_bytes = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n_bytes)
                m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
                action = m.group(1).decode() if m else "?"
                with outer._lock:
                    outer.requests.append({"action": action, "at": time.monotonic()})
                    n = len(outer.requests)
                decision = outer.plan(n, action)
                if decision == "forward":
                    status, headers, data = outer._forward(self.command, self.path, self.headers, body)
                else:
                    status, data = decision
                    headers = {"Content-Type": "text/xml"}
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.forward_to, "forward without a target"
        host, port = self.forward_to.split("//", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        hdrs = {k: v for k, v in headers.items() if k.lower() not in ("connection",)}
        conn.request(method, path, body=body, headers=hdrs)  # Host kept as signed
        resp = conn.getresponse()
        data = resp.read()
        out = dict(resp.getheaders())
        conn.close()
        return resp.status, out, data

    def actions(self) -> list[str]:
        with self._lock:
            return [r["action"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeEndpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
