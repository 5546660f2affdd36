"""The full LSP path on the remote backend: the server completes from a real `vllm serve`,
and a wrong endpoint is one message while the server keeps answering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.engine.vllm_serve import VllmServer, free_port, serving
from tests.lsp.helpers import (
    engine_stats,
    inline_params,
    items,
    open_document,
    server_config,
    wait_ready,
)


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient, vllm_server: VllmServer):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={
                "engine": {"backend": "remote", "endpoints": [vllm_server.url]},
                "completion": {"maxTokens": 8},
            },
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


async def test_completes_through_vllm_serve(
    client: LanguageClient, vllm_server: VllmServer
) -> None:
    before = vllm_server.metric("vllm:request_success_total")
    uri = "file:///workspace/notes.txt"
    open_document(client, uri, "Shopping list:\n- milk\n- ", language="plaintext")

    result = await client.text_document_inline_completion_async(
        inline_params(uri, 2, 2, invoked=True)
    )

    assert items(result) and items(result)[0].insert_text
    stats = await engine_stats(client)
    assert stats.model == "tiny-moe" and stats.profile == "tiny-moe"
    (endpoint,) = stats.endpoints
    assert endpoint.url == vllm_server.url and endpoint.healthy and endpoint.served == 1
    # vLLM counts each of the invoked request's samples (completion.candidates, 3).
    assert vllm_server.metric("vllm:request_success_total") == before + 3
    log = await client.protocol.send_request_async("coderLsp/requestLog", None)
    assert log[-1]["status"] == "finished" and "Shopping list" in log[-1]["prompt"]


@pytest_lsp.fixture(config=server_config(), scope="module")
async def broken(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={
                "engine": {
                    "backend": "remote",
                    "endpoints": [f"http://127.0.0.1:{free_port()}/v1"],
                    "connectTimeoutS": 2,
                }
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


async def test_a_wrong_endpoint_is_one_message_and_the_server_lives_on(
    broken: LanguageClient,
) -> None:
    stats = await wait_ready(broken, timeout=120)
    assert stats.state == "failed"
    assert "engine.endpoints: no endpoint answers" in stats.reason
    errors = [m.message for m in broken.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1 and "engine.endpoints" in errors[0]

    uri = "file:///workspace/a.txt"
    open_document(broken, uri, "hello ", language="plaintext")
    result = await broken.text_document_inline_completion_async(inline_params(uri, 0, 6))
    assert items(result) == []
    assert (await engine_stats(broken)).state == "failed"


@pytest.fixture(scope="module")
def doomed() -> Iterator[VllmServer]:
    """A second `vllm serve`, on its own core, that the test kills."""
    with serving(cpu="1") as server:
        yield server


@pytest_lsp.fixture(config=server_config(), scope="module")
async def pair(lsp_client: LanguageClient, vllm_server: VllmServer, doomed: VllmServer):  # type: ignore[no-untyped-def]
    statuses: list[Any] = []

    def on_status(client: LanguageClient, params: Any) -> None:
        statuses.append(params)

    lsp_client.feature("coderLsp/status")(on_status)
    lsp_client.statuses = statuses  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={
                "engine": {"backend": "remote", "endpoints": [vllm_server.url, doomed.url]},
                "completion": {"maxTokens": 4, "candidates": 1, "cache": False},
            },
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


async def test_a_dead_endpoint_is_shown_and_its_load_moves_to_the_survivor(
    pair: LanguageClient, vllm_server: VllmServer, doomed: VllmServer
) -> None:
    uri = "file:///workspace/list.txt"
    open_document(pair, uri, "Shopping list:\n- milk\n- ", language="plaintext")

    async def served() -> dict[str, int]:
        return {e.url: e.served for e in (await engine_stats(pair)).endpoints}

    for _ in range(4):
        await pair.text_document_inline_completion_async(inline_params(uri, 2, 2, invoked=True))
    before = await served()
    assert before[vllm_server.url] >= 1 and before[doomed.url] >= 1, before

    doomed.kill()
    for _ in range(3):
        result = await pair.text_document_inline_completion_async(
            inline_params(uri, 2, 2, invoked=True)
        )
        assert items(result), "answered by the survivor"

    after = await served()
    assert after[vllm_server.url] == before[vllm_server.url] + 3
    stats = await engine_stats(pair)
    assert stats.state == "ready" and "1 of 2 endpoints up" in stats.reason
    assert doomed.url in stats.reason
    down = [e for e in stats.endpoints if e.url == doomed.url]
    assert down and not down[0].healthy and down[0].error
    # The editor was told, not only asked.
    told = [s for s in pair.statuses if "1 of 2 endpoints up" in str(s.reason)]  # type: ignore[attr-defined]
    assert told and told[-1].state == "ready"
