#!/usr/bin/env python3
"""A payfleet client outside Rust: publish commands, wait for their terminal events.

Reads commands (one JSON object a line, as `payfleet publish` takes them) from a file
or stdin, publishes each to `<namespace>.commands` under `<provider>.<operation>` and
waits for the broker's confirm, then consumes a queue of its own bound to
`<namespace>.events` (`payment.#`) until every command has a terminal event. Events
come at least once, so copies are dropped by `event_id`.

Exit status: 0 when every command has exactly one terminal event; 1 when one has none
by the timeout, or several, or a publish failed; 2 for bad input or a bus that has no
payfleet fleet on this namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, TextIO

import pika
import pika.exceptions

# Which provider's queue a method's commands go to: the first part of the routing key.
PROVIDER_OF_METHOD = {
    "homebank": "ecommpay",
    "banks_of_india": "ecommpay",
    "google_pay": "epay",
    "p2p": "epay",
}
TERMINAL = frozenset({"succeeded", "declined", "failed", "rejected"})
# Payment events only: operator events (`operator.*`) share the exchange.
BINDING = "payment.#"
# The contract's key; the fleet dead-letters a command without one, so no event comes.
KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# A run of digits with single separators between them, as payfleet reads a card number.
DIGIT_RUN = re.compile(r"\d+(?:[ ._:-]\d+)*")


class BadInput(Exception):
    """A line that cannot be published as a command."""


@dataclass(frozen=True)
class Command:
    key: str
    routing_key: str
    body: bytes


def holds_card_number(text: str) -> bool:
    """Whether `text` holds a run of 12 to 19 digits passing the Luhn check: payfleet
    refuses such a key (it would stand in logs and events), and so never prints it."""
    for run in DIGIT_RUN.finditer(text):
        digits = [int(c) for c in run.group() if c.isdigit()]
        if 12 <= len(digits) <= 19:
            doubled = [d * 2 - 9 if d * 2 > 9 else d * 2 for d in digits[-2::-2]]
            if (sum(digits[-1::-2]) + sum(doubled)) % 10 == 0:
                return True
    return False


def parse_command(line: str, line_no: int) -> Command:
    """A command line as it will be published: the body is sent as given, not re-encoded."""
    try:
        command = json.loads(line)
    except json.JSONDecodeError as e:
        raise BadInput(f"line {line_no}: not JSON ({e.msg})") from None
    if not isinstance(command, dict):
        raise BadInput(f"line {line_no}: not a JSON object")
    key = command.get("idempotency_key")
    # Without a valid key the fleet can only dead-letter it: no event would ever answer.
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise BadInput(f"line {line_no}: no idempotency_key of 1 to 64 A-Z a-z 0-9 . _ : -")
    if holds_card_number(key):
        raise BadInput(f"line {line_no}: the idempotency_key looks like a card number")
    method, operation = command.get("method"), command.get("operation")
    provider = PROVIDER_OF_METHOD.get(method) if isinstance(method, str) else None
    if provider is None or not isinstance(operation, str):
        raise BadInput(f"line {line_no} ({key}): cannot route it: unknown method or no operation")
    return Command(key, f"{provider}.{operation}", line.strip().encode())


def read_commands(lines: Iterable[str]) -> list[Command]:
    return [
        parse_command(line, n)
        for n, line in enumerate(lines, start=1)
        if line.strip()
    ]


@dataclass
class Tracker:
    """What the events said about the commands this client published."""

    expected: set[str]
    seen_event_ids: set[str] = field(default_factory=set)
    terminal: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    duplicates: int = 0
    others: int = 0
    unreadable: int = 0

    def handle(self, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        event_id = event.get("event_id") if isinstance(event, dict) else None
        if not isinstance(event_id, str):
            self.unreadable += 1
            return
        if event_id in self.seen_event_ids:
            self.duplicates += 1
            return
        self.seen_event_ids.add(event_id)
        key = event.get("idempotency_key")
        if key not in self.expected:
            # Another publisher's command on the same bus.
            self.others += 1
        elif event.get("status") in TERMINAL:
            self.terminal.setdefault(key, []).append(event)

    def done(self) -> bool:
        return all(key in self.terminal for key in self.expected)

    def missing(self) -> list[str]:
        return sorted(key for key in self.expected if key not in self.terminal)

    def several(self) -> list[str]:
        return sorted(key for key, events in self.terminal.items() if len(events) > 1)


def outcome(event: dict[str, Any]) -> str:
    """One event's status and, for the unhappy ones, why."""
    provider = event.get("provider")
    if event.get("reason"):
        return f"{event['status']}: {event['reason']}"
    if event["status"] == "declined" and isinstance(provider, dict):
        return f"declined: {provider.get('code')} {provider.get('message')}"
    return str(event["status"])


def declare_queue(channel: Any, namespace: str, queue: str | None) -> str:
    """The client's own queue, bound to the events exchange.

    A named queue is a durable quorum queue, like the fleet's: the events of a client
    that is down wait in it. Without a name, the broker names an exclusive one that is
    deleted when this connection closes.
    """
    if queue:
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    else:
        queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, f"{namespace}.events", routing_key=BINDING)
    return queue


def publish(channel: Any, exchange: str, command: Command) -> None:
    """Publishes one command and waits for the broker's confirm.

    `mandatory`: a command that no queue takes raises UnroutableError instead of
    vanishing; a broker's nack raises NackError.
    """
    now = time.time()
    properties = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        timestamp=int(now),
        # Lets the fleet measure the time a command waited in its queue to the ms.
        headers={"x-payfleet-published-ms": int(now * 1000)},
    )
    channel.basic_publish(
        exchange, command.routing_key, command.body, properties=properties, mandatory=True
    )


def wait_for_events(channel: Any, queue: str, tracker: Tracker, timeout: float) -> None:
    """Consumes until every command has a terminal event or the timeout; acks each
    event once it is handled, so one that arrived is never lost."""
    if tracker.done():
        return
    deadline = time.monotonic() + timeout
    channel.basic_qos(prefetch_count=100)
    for method, _properties, body in channel.consume(queue, inactivity_timeout=0.5):
        if method is not None:
            tracker.handle(body)
            channel.basic_ack(method.delivery_tag)
        if tracker.done() or time.monotonic() >= deadline:
            break
    channel.cancel()


def report(
    out: TextIO, commands: list[Command], tracker: Tracker, failed_publishes: int
) -> bool:
    """Prints the summary; true when every command has exactly one terminal event."""
    for key in dict.fromkeys(c.key for c in commands):
        events = tracker.terminal.get(key, [])
        if key not in tracker.expected:
            said = "not published"
        else:
            said = "; ".join(outcome(e) for e in events) or "no terminal event"
        print(f"{key}: {said}", file=out)
    statuses = Counter(e["status"] for events in tracker.terminal.values() for e in events)
    rows = [(status, statuses[status]) for status in sorted(statuses)]
    rows += [
        ("without a terminal event", len(tracker.missing())),
        ("with several terminal events", len(tracker.several())),
        ("failed publishes", failed_publishes),
        ("duplicate events dropped", tracker.duplicates),
        ("events of other commands", tracker.others),
        ("unreadable events", tracker.unreadable),
    ]
    print(f"{'terminal status':<30}{'count':>6}", file=out)
    for name, count in rows:
        print(f"{name:<30}{count:>6}", file=out)
    ok = failed_publishes == 0 and not tracker.missing() and not tracker.several()
    print(f"verdict: {'OK' if ok else 'FAILED'}", file=out)
    return ok


def run(args: argparse.Namespace) -> int:
    source = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    with source:
        try:
            commands = read_commands(source)
        except BadInput as e:
            print(e, file=sys.stderr)
            return 2
    parameters = pika.URLParameters(args.amqp_url)
    parameters.client_properties = {"connection_name": "payfleet-python-client"}
    try:
        connection = pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPConnectionError as e:
        # Not the URL: it may hold a password.
        print(f"cannot connect to the broker at --amqp-url: {type(e).__name__}", file=sys.stderr)
        return 2
    try:
        channel = connection.channel()
        # Passive: the fleet declares its exchanges; a typo in the namespace should
        # fail here, not create an exchange no worker reads.
        for exchange in (f"{args.namespace}.commands", f"{args.namespace}.events"):
            try:
                channel.exchange_declare(exchange, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                print(
                    f"no exchange {exchange}: is a payfleet fleet running with "
                    f"amqp.namespace = {args.namespace}?",
                    file=sys.stderr,
                )
                return 2
        # Bound before publishing, so no event can come before the queue is there.
        queue = declare_queue(channel, args.namespace, args.queue)
        channel.confirm_delivery()
        published: set[str] = set()
        failed = 0
        for command in commands:
            try:
                publish(channel, f"{args.namespace}.commands", command)
                published.add(command.key)
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as e:
                failed += 1
                print(f"{command.key}: not published ({type(e).__name__})", file=sys.stderr)
        print(
            f"published {len(commands) - failed} of {len(commands)} message(s), "
            f"{len(published)} command(s); waiting on queue {queue}",
            flush=True,
        )
        tracker = Tracker(expected=published)
        wait_for_events(channel, queue, tracker, args.timeout)
        return 0 if report(sys.stdout, commands, tracker, failed) else 1
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="JSON-lines file of commands; `-` or nothing: stdin")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("PAYFLEET__AMQP__URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        help="the broker (default: $PAYFLEET__AMQP__URL, else the local one)",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("PAYFLEET__AMQP__NAMESPACE", "payfleet"),
        help="the fleet's amqp.namespace (default: $PAYFLEET__AMQP__NAMESPACE, else payfleet)",
    )
    parser.add_argument(
        "--queue",
        help="a durable queue of this name, kept after exit (default: a broker-named "
        "exclusive queue, gone when the client exits)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the events (default 60)"
    )
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
