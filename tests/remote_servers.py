"""Real servers on loopback for remote-read tests and benches: an HTTP file server that
honours (or ignores) Range and counts what it sends, and moto's S3 server."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Counter:
    """Requests served and body bytes sent (thread-safe)."""

    requests: int = 0
    gets: int = 0
    bytes: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests = self.gets = self.bytes = 0
            self.ranges.clear()


class FileServer:
    """``http://127.0.0.1:PORT/NAME`` serves ``root/NAME``; ``honour_range=False`` answers
    every GET with the whole file (status 200), as some servers do."""

    def __init__(self, root: str, *, honour_range: bool = True) -> None:
        self.root = root
        self.honour_range = honour_range
        self.count = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                with server.count.lock:
                    server.count.requests += 1
                    server.count.gets += body
                path = os.path.join(server.root, self.path.lstrip("/").split("?")[0])
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                st = os.stat(path)
                size = st.st_size
                start, end = 0, size
                m = _RANGE.match(self.headers.get("Range", ""))
                partial = body and server.honour_range and m is not None
                if partial:
                    assert m is not None
                    start = int(m.group(1))
                    end = min(size, int(m.group(2)) + 1 if m.group(2) else size)
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                else:
                    self.send_response(200)
                if server.honour_range:
                    self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{st.st_mtime_ns:x}-{size:x}"')
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                if not body:
                    return
                with server.count.lock:
                    server.count.ranges.append((start, end))
                self._send(path, start, end)

            def _send(self, path: str, start: int, end: int) -> None:
                with open(path, "rb") as f:
                    f.seek(start)
                    left = end - start
                    while left:
                        data = f.read(min(left, 64 * 1024))
                        with server.count.lock:  # counted before it is sent: when the client
                            server.count.bytes += len(data)  # has the bytes, the count has them
                        try:
                            self.wfile.write(data)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        left -= len(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL. Sets dummy AWS
    credentials for the block (moto accepts any)."""
    from moto.server import ThreadedMotoServer

    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
