"""Native tests of app.py, without Wasm and without componentize-py.

Run from this directory: python3 -m unittest

The modules that componentize-py generates (wit_world, componentize_py_types)
are replaced by small stand-ins with the same names and shapes: a kv store
that honours TTLs against a fake clock, and a log that records its lines.
"""

import json
import sys
import types as pytypes
import unittest
from dataclasses import dataclass
from enum import Enum
from typing import List, Optional


# --- stand-ins for the generated bindings -------------------------------------

@dataclass(frozen=True)
class Err(Exception):
    value: object


@dataclass
class Reply:
    code: int
    enhanced: str
    text: str


@dataclass
class Verdict_Continue:
    pass


@dataclass
class Verdict_Defer:
    value: Reply


@dataclass
class Outcome:
    verdict: object
    edits: List[object]


@dataclass
class Client:
    ip: str
    port: int = 25
    helo: Optional[str] = None
    esmtp: bool = True
    tls: bool = False
    auth_user: Optional[str] = None
    in_mynetworks: bool = False
    improper_pipelining: bool = False


@dataclass
class Envelope:
    sender: str
    recipients: List[str]


class Context:
    """The host's context resource: what a hook reads on demand."""

    def __init__(self, client, envelope=None, args=()):
        self._client = client
        self._envelope = envelope or Envelope(sender="", recipients=[])
        self._args = list(args)

    def args(self):
        return self._args

    def client(self):
        return self._client

    def envelope(self):
        return self._envelope


class FakeHost:
    """clock, kv (with TTLs) and log, sharing one notion of time."""

    def __init__(self):
        self.now_ms = 1_700_000_000_000
        self.store = {}  # key -> (value, expires_at_ms or None)
        self.lines = []  # (level, message)

    def get(self, key):
        value, expires = self.store.get(key, (None, None))
        if expires is not None and self.now_ms >= expires:
            return None
        return value

    def set(self, key, value, ttl_secs):
        assert isinstance(value, bytes)
        self.store[key] = (value, None if ttl_secs is None else self.now_ms + ttl_secs * 1000)

    def write(self, level, message):
        self.lines.append((level, message))


class Level(Enum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


HOST = FakeHost()


def _module(name, **attrs):
    module = pytypes.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


_module("componentize_py_types", Err=Err)
_types = _module("wit_world.imports.types", Reply=Reply, Verdict_Continue=Verdict_Continue,
                 Verdict_Defer=Verdict_Defer, Outcome=Outcome, Client=Client, Envelope=Envelope)
_kv = _module("wit_world.imports.kv", get=lambda k: HOST.get(k),
              set=lambda k, v, t: HOST.set(k, v, t), delete=lambda k: HOST.store.pop(k, None))
_clock = _module("wit_world.imports.clock", now_ms=lambda: HOST.now_ms)
_log = _module("wit_world.imports.log", Level=Level, write=lambda lv, m: HOST.write(lv, m))
_context = _module("wit_world.imports.context", Context=Context)
_module("wit_world.imports", types=_types, context=_context, kv=_kv, clock=_clock, log=_log)
_exports = _module("wit_world.exports", Lifecycle=object, SessionFilter=object)
_module("wit_world", exports=_exports)

import app  # noqa: E402  (after the stand-ins)


# --- tests --------------------------------------------------------------------

GREYLISTED = ("<Bob@Example.org>: Recipient address rejected: Greylisted, "
              "see https://postgrey.schweikert.ch/help/example.org.html")


class GreylistTest(unittest.TestCase):
    def setUp(self):
        HOST.__init__()
        app.Lifecycle().configure("")
        self.filter = app.SessionFilter()

    def rcpt(self, ip="192.0.2.7", sender="Alice@Example.com", rcpt="Bob@Example.org"):
        env = Envelope(sender=sender, recipients=[])
        return self.filter.on_rcpt(Context(Client(ip=ip), env), rcpt)

    def assert_deferred(self, outcome):
        self.assertEqual(outcome, Outcome(Verdict_Defer(Reply(450, "4.2.0", GREYLISTED)), []))

    def assert_continue(self, outcome):
        self.assertEqual(outcome, Outcome(Verdict_Continue(), []))

    def wait(self, secs):
        HOST.now_ms += secs * 1000

    def test_first_attempt_is_deferred_and_remembered(self):
        self.assert_deferred(self.rcpt())
        key = json.dumps(["192.0.2.0/24", "alice@example.com", "bob@example.org"])
        value, expires = HOST.store[key]
        self.assertEqual(json.loads(value), {"first_seen_ms": HOST.now_ms, "passed": False})
        self.assertEqual(expires, HOST.now_ms + 86400 * 35 * 1000)
        self.assertEqual(HOST.lines, [(Level.INFO, "action=greylist, reason=new, client_address="
                                       "192.0.2.7, sender=Alice@Example.com, recipient=Bob@Example.org")])

    def test_early_retry_is_deferred_then_passes_after_the_delay(self):
        self.assert_deferred(self.rcpt())
        self.wait(299)
        self.assert_deferred(self.rcpt())
        self.assertIn("reason=early-retry (1s missing)", HOST.lines[-1][1])
        self.wait(1)  # 300 s after the first attempt, not after the retry
        self.assert_continue(self.rcpt())
        self.assertIn("action=pass, reason=triplet found, delay=300,", HOST.lines[-1][1])
        self.assertTrue(all(level == Level.INFO for level, _ in HOST.lines))

    def test_passed_triplet_stays_passed_and_its_ttl_restarts(self):
        self.assert_deferred(self.rcpt())
        self.wait(400)
        self.assert_continue(self.rcpt())
        self.wait(86400 * 30)
        self.assert_continue(self.rcpt())  # refreshed: 30 days later is fine
        self.wait(86400 * 30)
        self.assert_continue(self.rcpt())
        self.assertIn("reason=triplet found,", HOST.lines[-1][1])

    def test_expired_entry_starts_over(self):
        self.assert_deferred(self.rcpt())
        self.wait(86400 * 35)
        self.assert_deferred(self.rcpt())
        self.assertIn("reason=new", HOST.lines[-1][1])

    def test_triplet_parts(self):
        self.assert_deferred(self.rcpt())
        self.wait(300)
        # Same /24, other case: the same triplet.
        self.assert_continue(self.rcpt(ip="192.0.2.200", sender="alice@EXAMPLE.com",
                                       rcpt="bob@example.ORG"))
        # Another /24, sender or recipient: new triplets.
        self.assert_deferred(self.rcpt(ip="192.0.3.7"))
        self.assert_deferred(self.rcpt(sender="carol@example.com"))
        self.assertEqual(self.rcpt(rcpt="dave@example.org").verdict.value.text,
                         "<dave@example.org>: Recipient address rejected: Greylisted, "
                         "see https://postgrey.schweikert.ch/help/example.org.html")

    def test_client_network(self):
        for ip, net in [
            ("192.0.2.7", "192.0.2.0/24"),
            ("::ffff:192.0.2.7", "192.0.2.0/24"),
            ("2001:DB8:0:0::1", "2001:db8::1"),
            ("not-an-ip", "not-an-ip"),
        ]:
            self.assertEqual(app.client_network(ip), net, ip)

    def test_null_sender_and_unreadable_entry(self):
        self.assert_deferred(self.rcpt(sender=""))
        key = json.dumps(["192.0.2.0/24", "", "bob@example.org"])
        HOST.set(key, b"garbage", None)
        self.assert_deferred(self.rcpt(sender=""))  # treated as new, overwritten
        self.assertIn("reason=new", HOST.lines[-1][1])
        self.assertEqual(json.loads(HOST.store[key][0])["passed"], False)

    def test_configured_delay_and_ttl(self):
        app.Lifecycle().configure('{"delay_secs": 60, "ttl_secs": 3600}')
        self.assert_deferred(self.rcpt())
        self.wait(60)
        self.assert_continue(self.rcpt())
        self.wait(3600)
        self.assert_deferred(self.rcpt())  # expired after an hour of silence

    def test_zero_delay_passes_the_first_retry(self):
        app.Lifecycle().configure('{"delay_secs": 0}')
        self.assert_deferred(self.rcpt())
        self.assert_continue(self.rcpt())

    def test_other_hooks_continue(self):
        context = Context(Client(ip="192.0.2.7"))
        self.assert_continue(self.filter.on_connect(context))
        self.assert_continue(self.filter.on_helo(context, "mx.example.com"))
        self.assert_continue(self.filter.on_mail(context, "a@b"))
        self.assertEqual(HOST.store, {})


class ConfigTest(unittest.TestCase):
    def test_defaults(self):
        for text in ("", "  ", "null", "{}"):
            self.assertEqual(app.parse_config(text), {"delay_secs": 300, "ttl_secs": 86400 * 35})

    def test_refused(self):
        for text, why in [
            ("{", "not valid JSON"),
            ("[]", "must be a table"),
            ('{"delay": 10}', "unknown config key 'delay'"),
            ('{"delay_secs": -1}', "'delay_secs' must be an integer >= 0"),
            ('{"delay_secs": "300"}', "'delay_secs' must be an integer >= 0"),
            ('{"delay_secs": 1.5}', "'delay_secs' must be an integer >= 0"),
            ('{"ttl_secs": true}', "'ttl_secs' must be an integer >= 1"),
            ('{"delay_secs": 600, "ttl_secs": 600}', "must be greater than 'delay_secs'"),
        ]:
            with self.subTest(text=text):
                with self.assertRaises(Err) as caught:
                    app.Lifecycle().configure(text)
                self.assertIsInstance(caught.exception.value, str)
                self.assertIn(why, caught.exception.value)


if __name__ == "__main__":
    unittest.main()
