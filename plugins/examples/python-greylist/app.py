"""postern example plugin: greylisting, in Python (after Postgrey).

At RCPT TO, the triplet (client network, sender, recipient) is looked up in
the plugin's key-value store. A triplet seen for the first time, or retried
before `delay_secs` have passed since it was first seen, is deferred with
Postgrey's wording:

    450 4.2.0 <rcpt@example.com>: Recipient address rejected: Greylisted,
    see https://postgrey.schweikert.ch/help/example.com.html

A retry after the delay passes (`continue`) and the triplet is remembered as
passed, so later mail for it is never delayed again while the entry lives.

In:  configure(JSON) with the plugin's table from postern.toml:
       delay_secs  int >= 0, default 300      how long a new triplet waits
       ttl_secs    int > delay_secs, default 35 days
                   how long an entry (waiting or passed) is kept in kv; a
                   passed entry's TTL restarts at each delivery attempt
     session-filter hooks; only on-rcpt decides (reading the client and the
     envelope from its context), the others say `continue`.
Out: `defer` (450 4.2.0) or `continue`, never edits; one info log line per
     decision, in Postgrey's `action=..., reason=...` form.

Capabilities: kv (triplet state), clock (first-seen times), log. The world in
wit/world.wit imports exactly these, as postern requires.

Triplet: an IPv4 client is reduced to its /24 (senders retry from pools of
neighbouring hosts); an IPv6 client is kept whole (in canonical form). Sender
and recipient are lower-cased. The kv key is the JSON array
[network, sender, recipient], which cannot be ambiguous whatever the addresses
contain; the value is JSON {"first_seen_ms": int, "passed": bool}. An entry
that does not parse is treated as absent (and overwritten).

Not done here (put other chain steps first): exempting mynetworks or
authenticated clients, whitelists, auto-whitelisting of clients.
"""

import ipaddress
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import clock, kv, log, types

DEFAULT_DELAY_SECS = 300
DEFAULT_TTL_SECS = 86400 * 35
CONFIG_KEYS = {"delay_secs", "ttl_secs"}

# The active configuration; configure() replaces it at the start of every
# instance. Module state lives for one instance (one SMTP transaction).
_config = {"delay_secs": DEFAULT_DELAY_SECS, "ttl_secs": DEFAULT_TTL_SECS}

_CONTINUE = types.Outcome(types.Verdict_Continue(), [])


def parse_config(text):
    """Parses and checks the plugin's JSON table; raises ValueError with a
    message for the operator."""
    if text.strip() in ("", "null"):  # an empty table may come as "" or null
        table = {}
    else:
        try:
            table = json.loads(text)
        except ValueError as e:
            raise ValueError(f"config is not valid JSON: {e}") from None
    if not isinstance(table, dict):
        raise ValueError("config must be a table (a JSON object)")
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        # Refuse typos ("delay") instead of silently running with defaults.
        raise ValueError(f"unknown config key {unknown[0]!r} (known: delay_secs, ttl_secs)")

    def seconds(key, default, minimum):
        value = table.get(key, default)
        # bool is an int in Python; `true` is not a duration.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{key!r} must be an integer >= {minimum}")
        return value

    delay = seconds("delay_secs", DEFAULT_DELAY_SECS, 0)
    ttl = seconds("ttl_secs", DEFAULT_TTL_SECS, 1)
    if ttl <= delay:
        # An entry would expire before its retry may pass: nothing ever would.
        raise ValueError(f"'ttl_secs' ({ttl}) must be greater than 'delay_secs' ({delay})")
    return {"delay_secs": delay, "ttl_secs": ttl}


def client_network(ip):
    """The client part of the triplet: an IPv4 address's /24, an IPv6 address
    whole. IPv4-mapped IPv6 addresses count as IPv4."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip.lower()  # not expected from the host; still a stable key
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.ip_network(f"{addr}/24", strict=False))
    return str(addr)


def triplet_key(ip, sender, recipient):
    """The kv key of a triplet (a JSON array, so no separator can collide)."""
    return json.dumps([client_network(ip), sender.lower(), recipient.lower()])


def greylisted(recipient):
    """The deferral, in Postgrey's words (as Postfix prints a policy reply)."""
    domain = recipient.rpartition("@")[2].lower()
    text = (f"<{recipient}>: Recipient address rejected: Greylisted, "
            f"see https://postgrey.schweikert.ch/help/{domain}.html")
    return types.Outcome(types.Verdict_Defer(types.Reply(450, "4.2.0", text)), [])


def load_entry(key):
    """The stored entry of a triplet, or None if absent, expired or unreadable."""
    raw = kv.get(key)
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        first_seen_ms = entry["first_seen_ms"]
        passed = entry["passed"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(first_seen_ms, int) or not isinstance(passed, bool):
        return None
    return first_seen_ms, passed


def store_entry(key, first_seen_ms, passed):
    value = json.dumps({"first_seen_ms": first_seen_ms, "passed": passed}).encode()
    kv.set(key, value, _config["ttl_secs"])


def decide(client, sender, recipient):
    """The greylisting decision for one recipient: an Outcome, logged."""
    now_ms = clock.now_ms()
    key = triplet_key(client.ip, sender, recipient)
    who = f"client_address={client.ip}, sender={sender}, recipient={recipient}"
    entry = load_entry(key)

    if entry is None:
        store_entry(key, now_ms, False)
        log.write(log.Level.INFO, f"action=greylist, reason=new, {who}")
        return greylisted(recipient)

    first_seen_ms, passed = entry
    waited_secs = (now_ms - first_seen_ms) // 1000
    if not passed and waited_secs < _config["delay_secs"]:
        # Keep the first-seen time: the delay runs from the first attempt.
        missing = _config["delay_secs"] - waited_secs
        log.write(log.Level.INFO, f"action=greylist, reason=early-retry ({missing}s missing), {who}")
        return greylisted(recipient)

    # Passed: (re)store it as passed, which also restarts its TTL, so triplets
    # in regular use stay known.
    store_entry(key, first_seen_ms, True)
    reason = "triplet found" if passed else f"triplet found, delay={waited_secs}"
    log.write(log.Level.INFO, f"action=pass, reason={reason}, {who}")
    return _CONTINUE


class Lifecycle(exports.Lifecycle):
    def configure(self, config):
        global _config
        try:
            _config = parse_config(config)
        except ValueError as e:
            raise Err(str(e))  # becomes result::err, reported to the operator


class SessionFilter(exports.SessionFilter):
    # Each hook gets the call's context (arguments, client, envelope), read
    # from the host only when asked for: only on_rcpt reads it here.
    def on_connect(self, context):
        return _CONTINUE

    def on_helo(self, context, helo):
        return _CONTINUE

    def on_mail(self, context, sender):
        return _CONTINUE

    def on_rcpt(self, context, recipient):
        return decide(context.client(), context.envelope().sender, recipient)
