"""A real SMTP server for tests/notify_channels.rs: aiosmtpd on a free loopback port.

usage: smtp_sink.py DIR [USER PASSWORD]

Prints the port it listens on (one line) once it accepts connections. Every message is
written to DIR/mail-N.json ({mail_from, rcpt_tos, data, authenticated, login}), complete
before the server answers 250 to DATA. Every command line the server reads is logged to
DIR/smtp.log (aiosmtpd's own `mail.log` logger, credentials sanitized by it), so a test can
tell which commands a client sent. With USER and PASSWORD, AUTH PLAIN/LOGIN is offered
over the plain connection (auth_require_tls off) and required before MAIL. STARTTLS is never
offered (no TLS context). Runs until killed.
"""

import asyncio
import json
import logging
import os
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        login = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "authenticated": bool(session.authenticated),
            "login": login.decode() if isinstance(login, bytes) else login,
        }
        path = os.path.join(self.directory, f"mail-{self.count}.json")
        with open(path + ".part", "w") as f:
            json.dump(record, f)
        os.rename(path + ".part", path)
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    return check


async def main():
    directory = sys.argv[1]
    creds = sys.argv[2:4]
    log = logging.getLogger("mail.log")
    handler = logging.FileHandler(os.path.join(directory, "smtp.log"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    sink = Sink(directory)

    def factory():
        if len(creds) == 2:
            return SMTP(
                sink,
                hostname="berth-test-smtp",
                authenticator=authenticator(*creds),
                auth_required=True,
                auth_require_tls=False,
            )
        return SMTP(sink, hostname="berth-test-smtp")

    server = await asyncio.get_running_loop().create_server(factory, host="127.0.0.1", port=0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
