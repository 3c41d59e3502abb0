"""A loopback TCP listener that records every connection and byte it gets and answers nothing: the
place a request must never reach."""

import socket
import threading


class Listener:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]
        self.received: list[bytes] = []  # one entry per connection
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")

    def close(self):
        self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
