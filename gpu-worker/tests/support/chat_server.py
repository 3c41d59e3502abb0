"""A real HTTP server speaking the OpenAI chat-completions protocol, standing in for a remote vLLM:
it records each request and answers with the scripted contents, in order."""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self, answers: list[tuple[int, str]] | Callable[[dict], tuple[int, str]], together: int = 1):
        """answers: scripted, in order, or made from each request's body. together > 1: each request
        waits, up to 5 s, until that many are in hand before any is answered (as a batching server
        would), and fails with 504 if they never come."""
        self.answers = answers if callable(answers) else list(answers)
        self.requests: list[dict] = []
        self._arrived = threading.Barrier(together, timeout=5) if together > 1 else None
        self._answering = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    if server._arrived:
                        server._arrived.wait()
                    with server._answering:
                        server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                        status, content = server.answers(body) if callable(server.answers) else server.answers.pop(0)
                except threading.BrokenBarrierError:
                    status, content = 504, "the other requests of the batch never came"
                payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
                data = json.dumps(payload if status == 200 else {"error": {"message": content}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_port}/v1"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self):
        self._http.shutdown()
        self._http.server_close()
