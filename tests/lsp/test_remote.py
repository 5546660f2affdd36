"""The full LSP path on the remote backend: the server completes from a real `vllm serve`,
and a wrong endpoint is one message while the server keeps answering."""

from __future__ import annotations

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.engine.vllm_serve import VllmServer, free_port
from tests.lsp.helpers import engine_stats, inline_params, open_document, server_config, wait_ready


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

    assert result is not None and result.items and result.items[0].insert_text
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
    assert result is not None and list(result.items) == []
    assert (await engine_stats(broken)).state == "failed"
