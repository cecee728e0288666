"""What crosses the pipe between `ir serve` and its writer process (tests/e2e/test_serve_writer.py runs the
real processes)."""

from __future__ import annotations

import pickle
import threading

import pytest

from ir.app.handlers import Outcome
from ir.app.signin import TooManyAttempts
from ir.config import Settings
from ir.domain.errors import Conflict, InvalidInput
from ir.domain.events import NoteAdded
from ir.entrypoints.http.writer_process import WriterProcess, _one_by_one, _picklable, _shipped
from tests.conftest import T0


class Unrebuildable(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")


def test_a_refusal_crosses_with_its_class_and_its_field() -> None:
    refusal = InvalidInput("speed is between 0 and 10,000", field="speed")
    crossed = pickle.loads(pickle.dumps(_picklable(refusal)))
    assert type(crossed) is InvalidInput
    assert (crossed.message, crossed.field) == ("speed is between 0 and 10,000", "speed")
    assert type(pickle.loads(pickle.dumps(_picklable(Conflict("changed"))))) is Conflict
    # a refusal whose __init__ asks for more than the message is rebuilt whole too
    limited = pickle.loads(pickle.dumps(_picklable(TooManyAttempts("too many sign-ins", retry_after=60))))
    assert (type(limited), str(limited), limited.retry_after) == (TooManyAttempts, "too many sign-ins", 60)


def test_an_error_that_cannot_be_rebuilt_crosses_as_its_name_and_text() -> None:
    crossed = _picklable(Unrebuildable(7, "disk full"))
    assert type(crossed) is RuntimeError
    assert str(crossed) == "Unrebuildable: 7: disk full"
    assert _picklable(None) is None


def test_an_outcome_crosses_without_the_incident_but_says_whether_an_action_is_due() -> None:
    outcome = Outcome(7, 3, [NoteAdded(at=T0, actor="cmd", text="called")], incident=object())  # type: ignore[arg-type]
    shipped = _shipped(outcome)
    assert shipped.incident is None
    assert shipped.automated is False
    assert pickle.loads(pickle.dumps(shipped)).events == outcome.events


def test_the_writer_process_is_not_forked_from_a_process_with_threads() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="before the server starts a thread"):
            WriterProcess(Settings(database_url="sqlite://"))
    finally:
        stop.set()
        thread.join()


def test_an_outcome_that_cannot_be_sent_tells_its_caller_the_change_was_stored() -> None:
    outcome = Outcome(7, 3, [lambda: None])  # type: ignore[list-item]
    gone, error = _one_by_one(outcome, None)
    assert gone is None
    assert isinstance(error, RuntimeError)
    assert "the change was stored" in str(error)
    sendable = Outcome(7, 3, [])
    assert _one_by_one(sendable, None) == (sendable, None)
