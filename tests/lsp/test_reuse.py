"""Gating, typing through a shown suggestion, following a generation, ranked candidates.

Observed engine-side: vLLM's own request record (`coderLsp/requestLog`) says whether a
suggestion cost an engine request; `coderLsp/completionLog` says where the server took it
from. tiny-moe's text is random, so the documents whose suggestions must survive
post-processing are plain text (only the language-agnostic rules apply).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.lsp.helpers import inline_params, items, open_document, server_config, wait_ready


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"completion": {"maxTokens": 12}},
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


async def engine_requests(client: LanguageClient) -> int:
    log = await client.protocol.send_request_async("coderLsp/requestLog", None)
    return len(log)


async def last_completion(client: LanguageClient) -> Any:
    log = await client.protocol.send_request_async("coderLsp/completionLog", None)
    return log[-1]


def insert(client: LanguageClient, uri: str, version: int, at: types.Position, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=at, end=at), text=text
                )
            ],
        )
    )


def after(at: types.Position, text: str) -> types.Position:
    """Where the cursor is after typing `text` at `at` (UTF-16 columns)."""
    lines = text.split("\n")
    column = len(lines[-1].encode("utf-16-le")) // 2
    if len(lines) == 1:
        return types.Position(line=at.line, character=at.character + column)
    return types.Position(line=at.line + len(lines) - 1, character=column)


async def test_no_suggestion_mid_identifier_on_automatic_trigger(client: LanguageClient) -> None:
    uri = "file:///workspace/gate.py"
    open_document(client, uri, "total = compute_total(items)\n")
    before = await engine_requests(client)
    # Cursor between "comp" and "ute_total".
    result = await client.text_document_inline_completion_async(inline_params(uri, 0, 12))
    assert items(result) == []
    assert await engine_requests(client) == before, "the gate should not ask the engine"
    entry = await last_completion(client)
    assert entry["source"] == "gate" and "identifier" in entry["reason"]
    # The user asking explicitly at the same place does reach the engine.
    await client.text_document_inline_completion_async(inline_params(uri, 0, 12, invoked=True))
    assert await engine_requests(client) == before + 1
    assert (await last_completion(client))["source"] == "engine"


async def test_typing_through_a_suggestion_needs_no_engine_request(
    client: LanguageClient,
) -> None:
    uri = "file:///workspace/notes.txt"
    text = "Shopping list:\n- apples\n- "
    open_document(client, uri, text, language="plaintext")
    cursor = types.Position(line=2, character=2)
    shown = await client.text_document_inline_completion_async(
        inline_params(uri, cursor.line, cursor.character)
    )
    assert items(shown), "tiny-moe's plain-text suggestion should survive post-processing"
    suggestion = items(shown)[0].insert_text
    assert isinstance(suggestion, str) and len(suggestion) >= 2
    before = await engine_requests(client)

    version = 2
    for typed in range(1, min(len(suggestion), 4)):
        char = suggestion[typed - 1]
        insert(client, uri, version, cursor, char)
        version += 1
        cursor = after(cursor, char)
        result = await client.text_document_inline_completion_async(
            inline_params(uri, cursor.line, cursor.character)
        )
        assert [i.insert_text for i in items(result)] == [suggestion[typed:]]
        entry = await last_completion(client)
        assert entry["source"] == "cache" and entry["typed"] == suggestion[:typed]
    assert await engine_requests(client) == before, "typing through asked the engine again"

    # Typing something the suggestion did not say is a new request, never the old text.
    following = suggestion[min(len(suggestion), 4) - 1]
    wrong = "#" if following != "#" else "@"
    insert(client, uri, version, cursor, wrong)
    cursor = after(cursor, wrong)
    result = await client.text_document_inline_completion_async(
        inline_params(uri, cursor.line, cursor.character)
    )
    assert (await last_completion(client))["source"] == "engine"
    assert await engine_requests(client) == before + 1


async def test_second_request_follows_the_generation_in_flight(client: LanguageClient) -> None:
    uri = "file:///workspace/follow.txt"
    open_document(client, uri, "Dear team,\n\n", language="plaintext")
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"coderLsp": {"completion": {"maxTokens": 200}}}
        )
    )
    try:
        before = await engine_requests(client)
        first = asyncio.ensure_future(
            client.text_document_inline_completion_async(inline_params(uri, 2, 0))
        )
        await asyncio.sleep(0.3)
        second = await client.text_document_inline_completion_async(inline_params(uri, 2, 0))
        assert [i.insert_text for i in items(second)] == [i.insert_text for i in items(await first)]
        assert await engine_requests(client) == before + 1
        assert (await last_completion(client))["source"] == "follow"
    finally:
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"coderLsp": {"completion": {"maxTokens": 12}}}
            )
        )


async def test_invoked_trigger_returns_ranked_candidates(client: LanguageClient) -> None:
    uri = "file:///workspace/ranked.txt"
    open_document(client, uri, "Ideas for the weekend:\n", language="plaintext")
    before = await engine_requests(client)
    result = await client.text_document_inline_completion_async(
        inline_params(uri, 1, 0, invoked=True)
    )
    assert len(items(result)) >= 2, "three samples at temperature 0.6 should differ"
    assert await engine_requests(client) == before + 1, "all candidates come from one request"
    entry = await last_completion(client)
    assert entry["items"] == [i.insert_text for i in items(result)]
    scores = entry["scores"]
    assert len(scores) == len(items(result))
    assert scores == sorted(scores, reverse=True)
