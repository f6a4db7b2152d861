#!/usr/bin/env python3
"""Sends messages with Python's smtplib and reports each outcome on stdout.

One line per message, flushed at once (a crash test reads them after killing
the server): ``OK <token> <queue id>`` when the server said 250 to the end of
data, ``ERR <token> <what>`` otherwise. The token is in the Subject and the
body, so a test can find the message in a Maildir.
"""
import argparse
import smtplib
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--server", required=True, help="host:port")
p.add_argument("--from", dest="sender", default="sender@example.org")
p.add_argument("--to", action="append", required=True)
p.add_argument("--count", type=int, default=1)
p.add_argument("--token", default="msg", help="prefix of each message's token")
p.add_argument("--size", type=int, default=200, help="approximate body size")
p.add_argument("--reuse", action="store_true", help="one session for all messages")
p.add_argument("--source", default=None, help="local address to send from, e.g. 127.0.0.2")
p.add_argument("--subject", default=None, help="Subject (default: the token)")
args = p.parse_args()
host, port = args.server.rsplit(":", 1)


def message(token):
    filler = ("x" * 70 + "\r\n") * max(1, args.size // 72)
    return (
        f"From: <{args.sender}>\r\nTo: <{args.to[0]}>\r\nSubject: {args.subject or token}\r\n"
        f"Message-ID: <{token}@test>\r\n\r\nbody of {token}\r\n{filler}"
    ).encode()


client = None
for i in range(args.count):
    token = f"{args.token}-{i}"
    try:
        if client is None:
            source = (args.source, 0) if args.source else None
            client = smtplib.SMTP(host, int(port), timeout=20, source_address=source)
            client.ehlo("client.test")
        client.mail(args.sender)
        for rcpt in args.to:
            code, msg = client.rcpt(rcpt)
            if code != 250:
                raise smtplib.SMTPRecipientsRefused({rcpt: (code, msg.decode())})
        code, msg = client.data(message(token))
        if code == 250:
            print(f"OK {token} {msg.decode().rsplit(' ', 1)[-1]}", flush=True)
        else:
            print(f"ERR {token} {code} {msg.decode()}", flush=True)
        if not args.reuse:
            client.quit()
            client = None
    except Exception as e:  # the server may be killed mid-test
        print(f"ERR {token} {type(e).__name__}: {e}", flush=True)
        client = None
        time.sleep(0.05)
if client is not None:
    try:
        client.quit()
    except Exception:
        pass
sys.exit(0)
