"""LoopFuture (mailstore/loop_future.py) behaves as a concurrent.futures.Future does
for everything its callers use, on the one thread that makes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError, TimeoutError
from typing import Any

import pytest

from nmail.mailstore.loop_future import LoopFuture

Kind = Callable[[], Future[Any]]
KINDS = [pytest.param(Future, id="Future"), pytest.param(LoopFuture, id="LoopFuture")]


def _story(make: Kind, finish: Callable[[Future[Any]], None]) -> list[Any]:
    """What callbacks see, before and after `finish`, and what the Future says then."""
    seen: list[Any] = []
    future = make()
    seen.append((future.done(), future.cancelled(), future.running()))
    future.add_done_callback(lambda f: seen.append(("first", f is future)))

    def boom(_: Future[Any]) -> None:
        seen.append("boom")
        raise ValueError("a callback that fails does not stop the others")

    future.add_done_callback(boom)
    future.add_done_callback(lambda f: seen.append("third"))
    finish(future)
    future.add_done_callback(lambda f: seen.append("after, at once"))
    seen.append((future.done(), future.cancelled(), future.running()))
    for read in (future.result, future.exception):
        try:
            seen.append(("value", repr(read(timeout=0))))
        except BaseException as exc:
            seen.append(("raised", type(exc).__name__, str(exc)))
    for again in (future.set_result, future.set_exception):
        try:
            again(KeyError())
            seen.append("set again")
        except InvalidStateError:
            seen.append("refused")
    seen.append(future.cancel())
    return seen


@pytest.mark.parametrize(
    "finish",
    [
        pytest.param(lambda f: f.set_result([1, 2]), id="result"),
        pytest.param(lambda f: f.set_exception(KeyError("gone")), id="exception"),
        pytest.param(lambda f: f.cancel(), id="cancelled"),
    ],
)
def test_the_same_story_as_a_future(finish: Callable[[Future[Any]], None]) -> None:
    expected = _story(Future, finish)
    assert _story(LoopFuture, finish) == expected
    assert "after, at once" in expected and "third" in expected


def test_a_pending_one_never_blocks_its_own_thread() -> None:
    future: LoopFuture[int] = LoopFuture()
    for read in (future.result, future.exception):
        with pytest.raises(TimeoutError):
            read()  # a Future would wait for ever: only this thread can complete it
        with pytest.raises(TimeoutError):
            read(timeout=5)
    with pytest.raises(RuntimeError):
        future.set_running_or_notify_cancel()
    assert "pending" in repr(future)
    future.cancel()
    with pytest.raises(CancelledError):
        future.result()
    with pytest.raises(CancelledError):
        future.exception()


@pytest.mark.parametrize("make", KINDS)
def test_asyncio_can_wrap_it(make: Kind) -> None:
    async def main() -> list[Any]:
        done, failed, cancelled = make(), make(), make()
        waits = [asyncio.wrap_future(f) for f in (done, failed, cancelled)]
        done.set_result("ok")
        failed.set_exception(KeyError("k"))
        waits[2].cancel()  # cancelling the asyncio side cancels the source
        got = await asyncio.gather(*waits, return_exceptions=True)
        return [got[0], type(got[1]).__name__, type(got[2]).__name__, cancelled.cancelled()]

    assert asyncio.run(main()) == ["ok", "KeyError", "CancelledError", True]
