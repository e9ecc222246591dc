"""Unit tests of the client's reading of commands and events (no broker needed):
`python -m unittest discover -s examples/python`. tests/python_client.rs runs them, then
the client against a real fleet."""

import io
import json
import unittest

from payfleet_client import (
    BadInput,
    Command,
    Tracker,
    holds_card_number,
    outcome,
    read_commands,
    report,
)


def event(key: str, status: str, event_id: str, **extra: object) -> bytes:
    return json.dumps(
        {"version": 1, "event_id": event_id, "idempotency_key": key, "status": status, **extra}
    ).encode()


class ReadCommands(unittest.TestCase):
    def test_routes_by_method_and_operation_and_keeps_the_body_as_given(self) -> None:
        line = '{"idempotency_key": "po-1", "method": "homebank", "operation": "payout"}'
        self.assertEqual(
            read_commands([line, "  \n"]),
            [Command("po-1", "ecommpay.payout", line.encode())],
        )
        epay = '{"idempotency_key": "gp-1", "method": "google_pay", "operation": "payment"}'
        self.assertEqual(read_commands([epay])[0].routing_key, "epay.payment")

    def test_refuses_what_no_event_could_answer_or_no_queue_would_take(self) -> None:
        for line, said in [
            ("not json", "line 1: not JSON"),
            ("[1]", "line 1: not a JSON object"),
            ('{"method": "homebank", "operation": "payout"}', "line 1: no idempotency_key"),
            ('{"idempotency_key": "po 1", "method": "homebank"}', "line 1: no idempotency_key"),
            ('{"idempotency_key": "4405-6397-0401-5096"}', "line 1: .* looks like a card number"),
            ('{"idempotency_key": "pay4405639704015096"}', "line 1: .* looks like a card number"),
            ('{"idempotency_key": "k", "method": ["homebank"], "operation": "payout"}', "cannot route"),
            ('{"idempotency_key": "k", "method": "cash", "operation": "payout"}', "cannot route"),
            ('{"idempotency_key": "k", "method": "homebank"}', "cannot route"),
        ]:
            with self.subTest(line=line), self.assertRaisesRegex(BadInput, said):
                read_commands([line])


class CardNumbers(unittest.TestCase):
    def test_a_luhn_run_of_12_to_19_digits_is_a_card_number(self) -> None:
        for text in ["4405639704015096", "po:4405.6397.0401.5096:x", "400000000002"]:
            with self.subTest(text=text):
                self.assertTrue(holds_card_number(text))
        # Luhn fails; too short; too long; a double separator ends the run.
        for text in ["4405639704015097", "40000000006", "4" * 20, "4405-6397--0401-5096"]:
            with self.subTest(text=text):
                self.assertFalse(holds_card_number(text))
        self.assertFalse(holds_card_number("po-2026-000123"))


class TrackEvents(unittest.TestCase):
    def test_a_copy_of_an_event_is_dropped_by_its_event_id(self) -> None:
        tracker = Tracker(expected={"a"})
        tracker.handle(event("a", "succeeded", "e1"))
        tracker.handle(event("a", "succeeded", "e1"))
        self.assertEqual(tracker.duplicates, 1)
        self.assertEqual(len(tracker.terminal["a"]), 1)
        self.assertEqual(tracker.several(), [])

    def test_done_only_when_every_command_has_a_terminal_event(self) -> None:
        tracker = Tracker(expected={"a", "b"})
        tracker.handle(event("a", "accepted", "e1"))
        tracker.handle(event("b", "rejected", "e2", reason="amount.minor: too small"))
        self.assertFalse(tracker.done())
        self.assertEqual(tracker.missing(), ["a"])
        tracker.handle(event("a", "declined", "e3"))
        self.assertTrue(tracker.done())

    def test_two_different_terminal_events_for_one_command_are_reported(self) -> None:
        tracker = Tracker(expected={"a"})
        tracker.handle(event("a", "succeeded", "e1"))
        tracker.handle(event("a", "failed", "e2"))
        self.assertEqual(tracker.several(), ["a"])

    def test_other_commands_and_unreadable_bodies_are_counted_apart(self) -> None:
        tracker = Tracker(expected={"a"})
        tracker.handle(event("someone-else", "succeeded", "e1"))
        tracker.handle(b"not json")
        tracker.handle(b'{"status": "succeeded"}')
        self.assertEqual((tracker.others, tracker.unreadable), (1, 2))
        self.assertEqual(tracker.terminal, {})


class Report(unittest.TestCase):
    def test_outcome_says_why(self) -> None:
        declined = {"status": "declined", "provider": {"code": "20602", "message": "Time-out"}}
        self.assertEqual(outcome(declined), "declined: 20602 Time-out")
        self.assertEqual(outcome({"status": "rejected", "reason": "x"}), "rejected: x")
        self.assertEqual(outcome({"status": "succeeded", "provider": {"code": "0"}}), "succeeded")

    def test_the_verdict_fails_on_a_missing_event_or_a_failed_publish(self) -> None:
        commands = [Command("a", "ecommpay.payout", b"{}"), Command("b", "ecommpay.payout", b"{}")]
        tracker = Tracker(expected={"a", "b"})
        tracker.handle(event("a", "succeeded", "e1"))
        out = io.StringIO()
        self.assertFalse(report(out, commands, tracker, failed_publishes=0))
        self.assertIn("b: no terminal event", out.getvalue())
        tracker.handle(event("b", "succeeded", "e2"))
        self.assertTrue(report(io.StringIO(), commands, tracker, failed_publishes=0))
        self.assertFalse(report(io.StringIO(), commands, tracker, failed_publishes=1))


if __name__ == "__main__":
    unittest.main()
