"""Cancelled and superseded completions leave nothing running inside vLLM.

The counts come from vLLM's own bookkeeping (`AsyncLLM.get_num_unfinished_requests`), read
through the server's `coderLsp/engineStats` request. Long generations come from a large
`maxTokens`; greedy decoding of tiny-moe's fixed random weights does not stop early.
"""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient as PlainClient
from pytest_lsp import LanguageClient, client_capabilities

from tests.lsp.helpers import (
    SERVER,
    inline_params,
    items,
    open_document,
    server_config,
    wait_ready,
    wait_unfinished,
)

URI = "file:///workspace/long.py"
TEXT = "class Parser:\n    def parse(self, text):\n        "


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            initialization_options={"completion": {"maxTokens": 1500}},
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    open_document(lsp_client, URI, TEXT)
    yield
    await lsp_client.shutdown_session()


def _send_inline(
    client: LanguageClient, msg_id: str, line: int = 2, character: int = 8
) -> asyncio.Future[object]:
    # pytest-lsp's client sends a request only once its coroutine runs: make it a task.
    return asyncio.ensure_future(
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            inline_params(URI, line, character),
            msg_id=msg_id,
        )
    )


async def test_cancel_request_aborts_inside_engine(client: LanguageClient) -> None:
    pending = _send_inline(client, "long-1")
    running = await wait_unfinished(client, 1)
    assert running.unfinishedRequests == 1, "the long generation never reached the engine"
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="long-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    after = await wait_unfinished(client, 0)
    assert after.unfinishedRequests == 0
    assert after.inflightCompletions == 0
    # The engine's own record says the request was aborted, not finished.
    log = await client.protocol.send_request_async("coderLsp/requestLog", None)
    assert log[-1]["status"] == "aborted"
    assert log[-1]["tokens"] < 1500


async def test_newer_request_supersedes_older_one(client: LanguageClient) -> None:
    older = _send_inline(client, "long-2")
    assert (await wait_unfinished(client, 1)).unfinishedRequests == 1
    # Elsewhere in the document (the end of `class Parser:`), so it cannot follow the older.
    newer = _send_inline(client, "long-3", 0, 13)
    # The older request answers empty once superseded ...
    older_result = await asyncio.wait_for(older, 30)
    assert list(older_result.items) == []  # type: ignore[attr-defined]
    # ... and only the newer one is left inside vLLM.
    assert (await wait_unfinished(client, 1)).unfinishedRequests == 1
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="long-3"))
    with pytest.raises(JsonRpcRequestCancelled):
        await newer
    assert (await wait_unfinished(client, 0)).unfinishedRequests == 0


async def test_many_cancelled_others_complete(client: LanguageClient) -> None:
    """vLLM's abort-test shape: start several, cancel some, the rest finish, nothing leaks."""
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"coderLsp": {"completion": {"maxTokens": 24}}})
    )
    uris = [f"file:///workspace/many{i}.py" for i in range(6)]
    for uri in uris:
        open_document(client, uri, "def f(x):\n    return ")
    futures = [
        asyncio.ensure_future(
            client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 11), msg_id=f"many-{i}"
            )
        )
        for i, uri in enumerate(uris)
    ]
    await asyncio.sleep(0)  # let the requests go out before their cancellations
    for i in (1, 3, 5):
        client.protocol.notify("$/cancelRequest", types.CancelParams(id=f"many-{i}"))
    results = await asyncio.gather(*futures, return_exceptions=True)
    for i, result in enumerate(results):
        if i in (1, 3, 5):
            # Cancelled, unless it had already answered before the notice arrived.
            assert isinstance(result, (JsonRpcRequestCancelled, types.InlineCompletionList))
        else:
            assert isinstance(result, types.InlineCompletionList)
            assert result.items and result.items[0].insert_text
    assert (await wait_unfinished(client, 0)).unfinishedRequests == 0
    # The server keeps answering.
    again = await client.text_document_inline_completion_async(inline_params(uris[0], 1, 11))
    assert items(again)


async def test_initialize_is_answered_before_the_engine_loads() -> None:
    """Time from process start to the initialize response, with the engine still starting."""
    client = PlainClient("timing", "1")
    started = time.perf_counter()
    await client.start_io(*SERVER)
    try:
        await client.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities(), process_id=None)
        )
        elapsed = time.perf_counter() - started
        client.initialized(types.InitializedParams())
        stats = await client.protocol.send_request_async("coderLsp/engineStats", None)
        sys.stderr.write(f"\ninitialize answered {elapsed * 1000:.0f} ms after process start\n")
        assert stats.state == "starting"
        assert elapsed < 5.0  # generous for a loaded CI machine; the goal is < 1 s
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
