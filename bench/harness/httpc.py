"""A small HTTP/1.1 keep-alive client over a plain socket, with the benchmark's Basic auth.

The standard library's http.client costs more per request than the servers under test do
(tickd answers in tens of microseconds), so the harness speaks the few bits of HTTP/1.1 it
needs itself: Content-Length and chunked bodies, Connection: close, and one reconnect
when a reused keep-alive connection turns out to be closed before any answer arrived.
"""
import json
import socket

AUTH = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest, the original platform's account


class HttpError(Exception):
    pass


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=60.0, auth=True):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        head = "Host: %s:%d\r\n" % (host, port)
        if auth:
            head += "Authorization: %s\r\n" % AUTH
        self.common = head

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = b""

    def request(self, method, path, body=None):
        """Returns (status, body bytes). `body` is JSON-encoded when it is not bytes."""
        if body is None:
            data = b""
            head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, self.common)
        else:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            head = "%s %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                method, path, self.common, len(data))
        payload = head.encode() + data
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self._connect()
            try:
                self.sock.sendall(payload)
                return self._read_response(method)
            except _StaleConnection:
                self.close()
                if attempt or not reused:
                    raise HttpError("connection closed before an answer")
            except (OSError, HttpError):
                self.close()
                raise
        raise HttpError("unreachable")

    def get_json(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise HttpError("GET %s answered %d: %r" % (path, status, body[:200]))
        return json.loads(body)

    def _recv(self, first=False):
        chunk = self.sock.recv(262144)
        if not chunk:
            if first and not self.buf:
                raise _StaleConnection()
            raise HttpError("connection closed mid-answer")
        self.buf += chunk

    def _read_response(self, method):
        first = True
        while b"\r\n\r\n" not in self.buf:
            self._recv(first)
            first = False
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        version, status = parts[0], int(parts[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        self.buf = rest
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buf) < length:
                self._recv()
            body, self.buf = self.buf[:length], self.buf[length:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:  # read until close
            try:
                while True:
                    self._recv()
            except HttpError:
                pass
            body, self.buf = self.buf, b""
            self.close()
            return status, body
        connection = headers.get("connection", "").lower()
        if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
            self.close()
        return status, body

    def _read_chunked(self):
        out = []
        while True:
            while b"\r\n" not in self.buf:
                self._recv()
            line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                self._recv()
            out.append(self.buf[:size])
            self.buf = self.buf[size + 2:]
            if size == 0:
                return b"".join(out)


class _StaleConnection(Exception):
    pass
