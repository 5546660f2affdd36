"""How the remote engine reads a completion stream: cumulative samples, and stop strings
beyond the four the OpenAI API takes, applied on this side."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine import EngineError, GenerationRequest
from engine.remote import MAX_SERVER_STOPS, RemoteEngine, RemoteOptions, _Samples


def event(index: int, text: str, finish: str | None = None, lp: float | None = None) -> str:
    logprobs = {"token_logprobs": [lp]} if lp is not None else None
    choice = {"index": index, "text": text, "finish_reason": finish, "logprobs": logprobs}
    return json.dumps({"choices": [choice]})


def test_samples_grow_and_carry_their_mean_logprob() -> None:
    samples = _Samples(GenerationRequest(prompt="p", n=2, logprobs=True))
    samples.add(event(0, "ab", lp=-1.0))
    samples.add(event(1, "x", lp=-3.0))
    (last,) = samples.add(event(0, "c", "length", lp=-2.0))
    assert (last.text, last.token_count, last.finished, last.mean_logprob) == ("abc", 2, True, -1.5)
    assert not samples.all_done


def test_stop_strings_past_the_fourth_are_applied_here() -> None:
    stops = ["<a>", "<b>", "<c>", "<d>", "\ndef ", "\nclass "]
    request = GenerationRequest(prompt="p", stop=stops)
    engine = RemoteEngine(RemoteOptions(endpoints=("http://h/v1",)))
    assert engine._body(request)["stop"] == stops[:MAX_SERVER_STOPS]

    samples = _Samples(request)
    samples.add(event(0, "    return 1\n"))
    (chunk,) = samples.add(event(0, "\nde"))
    assert not chunk.finished
    (chunk,) = samples.add(event(0, "f g():"))  # the stop string spans two events
    assert chunk.text == "    return 1\n" and chunk.finish_reason == "stop" and chunk.finished
    assert samples.all_done
    assert samples.add(event(0, "more")) == [], "a stopped sample takes nothing more"


def test_a_server_error_event_is_an_engine_error() -> None:
    samples = _Samples(GenerationRequest(prompt="p"))
    with pytest.raises(EngineError, match="the server reported"):
        samples.add(json.dumps({"error": {"message": "boom"}}))
    with pytest.raises(EngineError, match="unreadable"):
        samples.add("{not json")


@pytest.mark.parametrize(
    "data",
    ["[1, 2]", "42", '"text"', "null", '{"choices": 7}', '{"choices": [3]}',
     '{"choices": [{"index": "zero"}]}', '{"choices": [{"text": 5}]}'],
)  # fmt: skip
def test_garbage_events_are_engine_errors(data: str) -> None:
    """What a proxy or a broken server sends instead of a completion event is a clear
    error, never an exception from deep inside the parsing."""
    with pytest.raises(EngineError, match="unreadable stream event"):
        _Samples(GenerationRequest(prompt="p")).add(data)


async def test_a_stream_that_ends_before_it_finished_is_an_error() -> None:
    """A server that dies between two events closes the connection cleanly: what came is not
    the whole answer, and must not be taken for it."""
    from engine import EngineStatus
    from tests.stub_openai import StubOpenAI

    with StubOpenAI(reply=lambda prompt: "partial answer") as stub:
        engine = RemoteEngine(RemoteOptions(endpoints=(stub.url,), model="tiny-moe"))
        await engine.start()
        try:
            assert engine.state.status is EngineStatus.READY
            request = GenerationRequest(prompt="x", max_tokens=8)
            assert [c async for c in engine.generate(request)][-1].finished
            stub.fault = "truncate"
            ended = r"broke off: .*the stream ended before it finished"
            with pytest.raises(EngineError, match=ended):
                async for _ in engine.generate(request):
                    pass
            assert engine.request_log()[-1].status == "failed"
        finally:
            await engine.shutdown()


@pytest.mark.parametrize("local_stop", [False, True])
async def test_finished_answers_leave_their_connection_for_the_next(local_stop: bool) -> None:
    """A whole answer is read to its end, so the next request reuses its connection; one
    this client cut short while the server went on (a fifth stop string, applied here) is
    closed, which aborts the rest."""
    from tests.stub_openai import StubOpenAI

    with StubOpenAI(reply=lambda prompt: "one two three") as stub:
        engine = RemoteEngine(RemoteOptions(endpoints=(stub.url,), model="tiny-moe"))
        await engine.start()
        try:
            stop = ["a", "b", "c", "d", "two"] if local_stop else []
            if local_stop:
                stub.fault = "truncate"  # the server does not end its sample: it goes on
            request = GenerationRequest(prompt="x", max_tokens=8, stop=stop)
            for _ in range(3):
                chunks = [c async for c in engine.generate(request)]
                assert chunks[-1].finished
                assert chunks[-1].text == ("one " if local_stop else "one two three")
                for _ in range(100):  # the body's end is read in the background
                    if not engine._finishing:
                        break
                    await asyncio.sleep(0.01)
            peers = {r.peer for r in stub.requests if r.path.endswith("/completions")}
            assert len(peers) == (3 if local_stop else 1), peers
        finally:
            await engine.shutdown()
