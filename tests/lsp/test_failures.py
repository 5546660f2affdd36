"""A broken engine and bad settings are reported by name, and the server stays up."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.lsp.helpers import (
    engine_stats,
    inline_params,
    items,
    open_document,
    server_config,
    wait_ready,
)

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={
                "engine": {"model": "/nonexistent/model-dir"},
                "completion": {"maxTokens": "many", "temperature": 0.0},
                "bogus": True,
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


async def test_bad_settings_are_named_and_the_rest_applies(client: LanguageClient) -> None:
    messages = [m.message for m in client.messages]
    assert any("completion.maxTokens" in m and "1 to 2048" in m for m in messages), messages
    assert any("unknown setting 'bogus'" in m for m in messages), messages


async def test_failed_engine_is_shown_with_its_reason(client: LanguageClient) -> None:
    stats = await wait_ready(client)
    assert stats.state == "failed"
    assert "/nonexistent/model-dir" in stats.reason
    errors = [m for m in client.messages if m.type == types.MessageType.Error]
    assert any("failed to load" in m.message and "/nonexistent" in m.message for m in errors)
    # Progress ended with the failure, too.
    end = client.progress_reports["coder-lsp/engine"][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message.startswith("failed")


async def test_server_keeps_answering_after_engine_failure(client: LanguageClient) -> None:
    uri = "file:///workspace/a.py"
    open_document(client, uri, "def f():\n    ")
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 4))
    assert items(result) == []
    assert (await engine_stats(client)).state == "failed"


async def test_a_restarted_engine_reports_its_progress_again(client: LanguageClient) -> None:
    assert (await wait_ready(client)).state == "failed"
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"coderLsp": {"engine": {"model": "/nonexistent/other-model"}}}
        )
    )
    deadline = time.monotonic() + 120
    stats = await wait_ready(client)
    while "other-model" not in stats.reason:  # the old failure until the reload is done
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.2)
        stats = await wait_ready(client)
    assert stats.state == "failed"
    # A new token for the new load (a token is never created twice), begun and ended.
    reports = client.progress_reports.get("coder-lsp/engine/2", [])
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message and "other-model" in reports[-1].message
