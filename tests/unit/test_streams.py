"""Generations in flight: following them, superseding them, aborting unwatched ones."""

from __future__ import annotations

import asyncio

import pytest

from lsp_server.completion.streams import Produce, Stream, Streams

PREFIX = "def f():\n    return "
SUFFIX = "\n"


def producer(text: str, gate: asyncio.Event) -> Produce:
    async def produce(stream: Stream) -> tuple[str, ...]:
        stream.grow(text[:3])
        await gate.wait()
        stream.grow(text)
        return (text,)

    return produce


async def test_follow_when_typing_agrees_with_the_model_so_far() -> None:
    streams = Streams(grace_s=0.05)
    gate = asyncio.Event()
    stream = streams.start("doc", PREFIX, SUFFIX, "py", producer("x + 1", gate))
    await asyncio.sleep(0)
    found = streams.find("doc", PREFIX + "x", SUFFIX, "py")
    assert found is not None and found[0] is stream and found[1] == "x"
    # Typed past what the model has so far: not followed on a guess.
    assert streams.find("doc", PREFIX + "x + 1", SUFFIX, "py") is None
    assert streams.find("doc", PREFIX + "y", SUFFIX, "py") is None
    assert streams.find("doc", PREFIX + "x", SUFFIX, "other-tag") is None
    assert streams.find("other", PREFIX + "x", SUFFIX, "py") is None
    gate.set()
    assert await stream.result() == ("x + 1",)


async def test_cancelled_waiter_aborts_after_grace_unless_followed() -> None:
    streams = Streams(grace_s=0.05)
    gate = asyncio.Event()
    stream = streams.start("doc", PREFIX, SUFFIX, "py", producer("x + 1", gate))
    first = asyncio.ensure_future(stream.result())
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0.01)
    follower = asyncio.ensure_future(stream.result())  # picked up within the grace
    await asyncio.sleep(0.1)
    assert not stream.task.done()
    gate.set()
    assert await follower == ("x + 1",)


async def test_unwatched_generation_is_aborted() -> None:
    streams = Streams(grace_s=0.02)
    stream = streams.start("doc", PREFIX, SUFFIX, "py", producer("x", asyncio.Event()))
    waiter = asyncio.ensure_future(stream.result())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0.1)
    assert stream.task.cancelled()
    assert streams.running() == 0


async def test_new_generation_supersedes_the_old_one() -> None:
    streams = Streams()
    old = streams.start("doc", PREFIX, SUFFIX, "py", producer("a", asyncio.Event()))
    waiter = asyncio.ensure_future(old.result())
    await asyncio.sleep(0)
    gate = asyncio.Event()
    gate.set()
    new = streams.start("doc", PREFIX + "b", SUFFIX, "py", producer("c", gate))
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert old.task.cancelled()
    assert await new.result() == ("c",)


async def test_abort_all_stops_every_generation() -> None:
    streams = Streams()
    a = streams.start("a", PREFIX, SUFFIX, "py", producer("x", asyncio.Event()))
    b = streams.start("b", PREFIX, SUFFIX, "py", producer("y", asyncio.Event()))
    await asyncio.sleep(0)
    streams.abort_all()
    await asyncio.sleep(0)
    assert a.task.cancelled() and b.task.cancelled()
    assert streams.running() == 0
