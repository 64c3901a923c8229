"""An SMTP server (aiosmtpd) on loopback that saves each message it receives.

Usage: python3 smtp_sink.py OUTFILE [CERT KEY]
With CERT and KEY (PEM files) it offers STARTTLS (RFC 3207). Prints its port once it accepts connections, then serves until killed.
Each message is appended to OUTFILE as one JSON line:
{"mail_from", "rcpt_tos", "data", "login"}. RCPT to an address starting
with "reject" is refused with 550. AUTH PLAIN is offered, accepting the
password "secret" for any user.
"""

import json
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if session.auth_data else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "login": login,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    if auth_data.password == b"secret":
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
tls = {}
if len(sys.argv) > 3:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    tls = {"tls_context": context}
controller = Controller(
    Sink(sys.argv[1]),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticator,
    auth_require_tls=False,
    **tls,
)
controller.start()
print(port, flush=True)
while True:
    time.sleep(3600)
