"""Real local servers for the delivery suites: an HTTP receiver that records
what it is sent and answers as told, and an SMTP server (aiosmtpd) that keeps
the messages it accepts. Both listen on 127.0.0.1 on a free port."""

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: object = field(default_factory=dict)  # JSON, or bytes sent as they are
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """A webhook receiver on 127.0.0.1. ``answer`` says how it answers (change
    it between requests); ``received`` lists every request, in order."""

    def __init__(self, answer: Answer | None = None):
        self.answer = answer or Answer()
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                answer = receiver.answer
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body)
                body = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Keep:
    """aiosmtpd handler: keeps accepted messages, refuses the addresses told."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        # As a mail client reads it: SMTP's CRLF line ends become the local ones.
        content = envelope.original_content.replace(b"\r\n", b"\n")
        self.messages.append(email.message_from_bytes(content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class MailServer:
    """A real SMTP server on 127.0.0.1; ``url`` is its EMAIL_URL."""

    def __init__(self, port: int | None = None):
        self.handler = _Keep()
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?timeout=5"

    @property
    def messages(self):
        return self.handler.messages

    def stop(self) -> None:
        self.controller.stop()
