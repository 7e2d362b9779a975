"""An SMTP server that accepts every message and writes each recipient to a file, one line per
copy received, written before the 250 reply to the message's data goes out: a message the
sender saw accepted is always in the file, so duplicates can be counted afterwards (and while
it runs).

Runs in a process of its own (the KillMidSend test and bench/send.py start it):

    .venv/bin/python bench/smtp_sink.py --port 2525 --out /tmp/received.txt

It prints "READY <port>" when it listens. The server is a small asyncio protocol speaking the
part of SMTP a client sending mail uses (EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET,
NOOP, QUIT; PIPELINING and 8BITMIME offered): aiosmtpd (what the unit tests use, in a thread)
spends ~2 ms of CPU on a 24 KB message, which would make the sink the bottleneck of the bench,
raw loop and worker path alike. `--aiosmtpd` serves with aiosmtpd instead, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, TextIO

END_OF_DATA = b"\r\n.\r\n"
MAX_LINE = 4096


class Recorder:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.messages = 0

    def record(self, recipients: list[str]) -> None:
        self.out.write("".join(f"{address}\n" for address in recipients))
        self.out.flush()
        self.messages += 1

    # aiosmtpd's hook, for --aiosmtpd
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.record(list(envelope.rcpt_tos))
        return "250 2.0.0 OK"


def _address(argument: bytes) -> str:
    text = argument.decode("utf-8", "replace")
    start, end = text.find("<"), text.find(">")
    return text[start + 1 : end] if 0 <= start < end else text.split()[0] if text.split() else ""


class SinkProtocol(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0
        self.mail_from: str | None = None
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink.test ESMTP esp sink\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):  # an empty message: the terminator right away
                    consumed = 3
                else:
                    # Only the new bytes (and the 4 before them) can complete the terminator.
                    end = self.buffer.find(END_OF_DATA, self.scanned)
                    if end == -1:
                        self.scanned = max(0, len(self.buffer) - len(END_OF_DATA) + 1)
                        break
                    consumed = end + len(END_OF_DATA)
                del self.buffer[:consumed]
                self.scanned = 0
                self.in_data = False
                self.recorder.record(self.recipients)
                self.mail_from, self.recipients = None, []
                replies.append(b"250 2.0.0 OK\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end == -1:
                if len(self.buffer) > MAX_LINE:
                    replies.append(b"500 5.5.2 Line too long\r\n")
                    self.buffer.clear()
                break
            line = bytes(self.buffer[:line_end])
            del self.buffer[: line_end + 2]
            reply = self.command(line)
            if reply is None:  # QUIT
                replies.append(b"221 2.0.0 Bye\r\n")
                assert self.transport is not None
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            replies.append(reply)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def command(self, line: bytes) -> bytes | None:
        verb, _, argument = line.partition(b" ")
        verb = verb.upper()
        if verb == b"EHLO":
            return b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 33554432\r\n"
        if verb == b"HELO":
            return b"250 sink.test\r\n"
        if verb == b"MAIL":
            self.mail_from, self.recipients = _address(argument.partition(b":")[2]), []
            return b"250 2.1.0 OK\r\n"
        if verb == b"RCPT":
            if self.mail_from is None:
                return b"503 5.5.1 MAIL first\r\n"
            self.recipients.append(_address(argument.partition(b":")[2]))
            return b"250 2.1.5 OK\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 RCPT first\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self.mail_from, self.recipients = None, []
            return b"250 2.0.0 OK\r\n"
        if verb == b"NOOP":
            return b"250 2.0.0 OK\r\n"
        if verb == b"QUIT":
            return None
        return b"502 5.5.2 Command not implemented\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--out", required=True, help="file the recipients are appended to")
    parser.add_argument("--aiosmtpd", action="store_true", help="serve with aiosmtpd instead")
    options = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    out = open(options.out, "a")  # open for the process's life
    recorder = Recorder(out)
    loop = asyncio.new_event_loop()

    def protocol() -> asyncio.Protocol:
        if options.aiosmtpd:
            from aiosmtpd.smtp import SMTP

            return SMTP(recorder, hostname="sink.test", ident="esp sink", enable_SMTPUTF8=True, loop=loop)
        return SinkProtocol(recorder)

    server = loop.run_until_complete(loop.create_server(protocol, host=options.host, port=options.port))
    port = server.sockets[0].getsockname()[1]
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print(f"READY {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        out.close()
        print(f"received {recorder.messages}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
