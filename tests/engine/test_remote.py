"""The remote engine against real `vllm serve` processes of tiny-moe on 127.0.0.1.

Observed server-side: vLLM's own Prometheus counters (`/metrics`) say whether a request
finished or was aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator

import pytest

from engine import EngineError, EngineStatus, GenerationChunk, GenerationRequest
from engine.remote import RemoteEngine, RemoteOptions
from tests.engine.vllm_serve import SERVED_NAME, VllmServer, free_port, serving

KEY = "test-key-123"


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[VllmServer]:
    """A second server, on its own core, that wants an API key."""
    with serving(api_key=KEY, cpu="1") as server:
        yield server


async def started(*urls: str, **extra: object) -> RemoteEngine:
    engine = RemoteEngine(RemoteOptions(endpoints=urls, **extra))  # type: ignore[arg-type]
    await engine.start()
    return engine


async def collect(engine: RemoteEngine, request: GenerationRequest) -> list[GenerationChunk]:
    return [chunk async for chunk in engine.generate(request)]


async def test_streams_samples_with_logprobs(vllm_server: VllmServer) -> None:
    engine = await started(vllm_server.url)
    try:
        assert engine.state.status is EngineStatus.READY, engine.state.reason
        assert engine.model == SERVED_NAME, "the one served model is taken"
        before = vllm_server.metric("vllm:request_success_total", finished_reason="length")
        request = GenerationRequest(
            prompt="def add(a, b):\n", max_tokens=6, temperature=0.7, n=2, logprobs=True
        )

        chunks = await collect(engine, request)

        last = {c.index: c for c in chunks}
        assert sorted(last) == [0, 1]
        assert all(c.finished and c.finish_reason == "length" for c in last.values())
        assert all(c.mean_logprob is not None and c.mean_logprob < 0 for c in last.values())
        assert all(c.token_count == 6 and c.text for c in last.values())
        grew = [c.text for c in chunks if c.index == 0]
        assert all(b.startswith(a) for a, b in itertools.pairwise(grew)), "cumulative"
        # vLLM counts each sample of the request.
        assert (
            vllm_server.metric("vllm:request_success_total", finished_reason="length") == before + 2
        )
        assert engine.request_log()[-1].status == "finished"
    finally:
        await engine.shutdown()


async def wait_for(condition: object, timeout: float = 30.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(interval)


async def test_cancelling_aborts_the_request_in_the_server(vllm_server: VllmServer) -> None:
    """vLLM 0.32 does not count a disconnected client's request under
    `request_success_total{finished_reason="abort"}`: the server's metrics show the abort as
    a request that stopped running without finishing its 2000 tokens.

    When the server's busy event loop notices the closed connection varies a lot on this
    machine (CPU-bound tiny-moe on 2 cores): measured after 3 to 2,000 of the tokens, with
    httpx and with the engine's own connections alike, once in 16 only at the end. So up to
    three tries: a client that never closed the connection would see every one finish."""
    engine = await started(vllm_server.url)
    outcomes: list[str] = []
    try:
        for _ in range(3):
            finished = vllm_server.metric("vllm:request_success_total")
            tokens = vllm_server.metric("vllm:generation_tokens_total")
            request = GenerationRequest(prompt="x", max_tokens=2000, ignore_eos=True)
            stream = engine.generate(request)
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    if chunk.token_count >= 3:
                        break  # the consumer goes away mid-generation
            assert engine.request_log()[-1].status == "aborted"
            assert engine.unfinished_requests() == 0

            await wait_for(lambda: vllm_server.metric("vllm:num_requests_running") == 0)
            made = vllm_server.metric("vllm:generation_tokens_total") - tokens
            stopped = vllm_server.metric("vllm:request_success_total") == finished
            outcomes.append(f"{made:.0f} tokens, {'aborted' if stopped else 'finished'}")
            if stopped and made < 2000:
                return
        raise AssertionError(f"the server finished every request anyway: {outcomes}")
    finally:
        await engine.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "options", "message"),
    [
        pytest.param(
            "http://127.0.0.1:{free}/v1", {}, "engine.endpoints: no endpoint answers", id="url"
        ),
        pytest.param("{plain}", {"model": "nope"}, "engine.model 'nope' is not served", id="model"),
        pytest.param("{keyed}", {}, "unauthorized (401): put the key in", id="no-key"),
        pytest.param(
            "{keyed}", {"api_key": "bad-key-987", "api_key_env": "MY_KEY"}, "$MY_KEY", id="bad-key"
        ),
        pytest.param("https://127.0.0.1:{plain_port}/v1", {}, "TLS failure", id="tls"),
    ],
)
async def test_misconfiguration_is_one_clear_message(
    vllm_server: VllmServer,
    keyed_server: VllmServer,
    endpoint: str,
    options: dict[str, str],
    message: str,
) -> None:
    url = endpoint.format(
        free=free_port(),
        plain=vllm_server.url,
        keyed=keyed_server.url,
        plain_port=vllm_server.port,
    )
    engine = await started(url, connect_timeout_s=3.0, **options)
    try:
        assert engine.state.status is EngineStatus.FAILED
        assert message in engine.state.reason, engine.state.reason
        assert KEY not in engine.state.reason and "bad-key-987" not in engine.state.reason
    finally:
        await engine.shutdown()


async def test_requests_spread_over_endpoints_and_survive_one_dying(
    vllm_server: VllmServer,
) -> None:
    with serving(cpu="1") as doomed:
        engine = await started(vllm_server.url, doomed.url, health_interval_s=0.5)
        try:
            assert engine.state.status is EngineStatus.READY
            short = GenerationRequest(prompt="def f():\n", max_tokens=4)
            await asyncio.gather(*(collect(engine, short) for _ in range(4)))
            served = {e["url"]: e["served"] for e in engine.endpoints()}
            assert served[vllm_server.url] >= 1 and served[doomed.url] >= 1, served

            def inflight() -> dict[str, int]:
                return {e["url"]: e["inflight"] for e in engine.endpoints()}

            # Two long generations, one on each endpoint; one endpoint dies under its request,
            # killed once that request streams to this client and still runs in the server.
            # A client starved of CPU (two spinning engines on two cores) may see the first
            # chunk only after the server has sent the whole answer: then there is nothing to
            # cut short, and the scene is played again.
            long = GenerationRequest(prompt="x", max_tokens=2000, ignore_eos=True)  # seconds

            async def follow(into: list[GenerationChunk]) -> list[GenerationChunk]:
                async for chunk in engine.generate(long):
                    into.append(chunk)
                return into

            for _ in range(3):
                seen: list[list[GenerationChunk]] = [[], []]
                tasks = [asyncio.ensure_future(follow(seen[0]))]
                await wait_for(lambda: sum(inflight().values()) == 1)
                first_on_doomed = inflight()[doomed.url] == 1
                tasks.append(asyncio.ensure_future(follow(seen[1])))
                await wait_for(lambda: all(n == 1 for n in inflight().values()))
                on_doomed = seen[0] if first_on_doomed else seen[1]
                await wait_for(lambda on=on_doomed: bool(on), timeout=60, interval=0.002)
                if doomed.metric("vllm:num_requests_running") >= 1:
                    break
                await asyncio.gather(*tasks)
            else:
                pytest.fail("the doomed server finished every long answer before it was seen")
            doomed.kill()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(lost) == 1 and isinstance(lost[0], EngineError), results
            assert isinstance(results[0 if first_on_doomed else 1], EngineError), results

            # Later requests go to the survivor, and the state says which endpoint is down.
            before = {e["url"]: e["served"] for e in engine.endpoints()}
            for _ in range(3):
                assert (await collect(engine, short))[-1].finished
            after = {e["url"]: e["served"] for e in engine.endpoints()}
            assert after[vllm_server.url] == before[vllm_server.url] + 3
            assert after[doomed.url] == before[doomed.url]
            assert engine.state.status is EngineStatus.READY
            assert "1 of 2 endpoints up" in engine.state.reason
            assert doomed.url in engine.state.reason
        finally:
            await engine.shutdown()


def test_the_endpoint_tokenizer_counts_like_the_model_files(vllm_server: VllmServer) -> None:
    from engine.profiles import prepare_model
    from engine.remote import EndpointTokenizer
    from engine.tokenizer import HFTokenizer

    local = HFTokenizer.from_model(prepare_model("builtin:tiny-moe"))
    remote = EndpointTokenizer(vllm_server.url, SERVED_NAME)
    try:
        for text in ("def add(a, b):\n    return a + b\n", "    ", "\u00e9t\u00e9 \U0001f600"):
            assert remote.encode(text) == local.encode(text), text
        marker = "<\uff5cfim\u2581hole\uff5c>"
        assert remote.single_token_id(marker) == local.single_token_id(marker) is not None
    finally:
        remote.close()
