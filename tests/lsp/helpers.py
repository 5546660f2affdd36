"""Helpers for driving `coder-lsp serve --stdio` with pytest-lsp."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = [sys.executable, "-m", "lsp_server", "serve", "--stdio", "--profile", "tiny-moe"]
LOAD_TIMEOUT = 300.0


def items(
    result: types.InlineCompletionList | Sequence[types.InlineCompletionItem] | None,
) -> list[types.InlineCompletionItem]:
    """An inline completion answer's items (the server answers with a list object)."""
    assert isinstance(result, types.InlineCompletionList), result
    return list(result.items)


def server_config(*extra: str) -> ClientServerConfig:
    return ClientServerConfig(server_command=[*SERVER, *extra], server_env=dict(os.environ))


async def engine_stats(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("coderLsp/engineStats", None)


async def wait_ready(client: LanguageClient, timeout: float = LOAD_TIMEOUT) -> Any:
    """Poll the engine's state until it is ready (or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = await engine_stats(client)
        if stats.state in ("ready", "failed"):
            return stats
        await asyncio.sleep(0.5)
    raise TimeoutError("engine did not load")


async def wait_unfinished(client: LanguageClient, count: int, timeout: float = 30.0) -> Any:
    """Poll until vLLM reports exactly `count` unfinished requests."""
    deadline = time.monotonic() + timeout
    stats = await engine_stats(client)
    while stats.unfinishedRequests != count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        stats = await engine_stats(client)
    return stats


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def inline_params(
    uri: str, line: int, character: int, invoked: bool = False
) -> types.InlineCompletionParams:
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if invoked
        else types.InlineCompletionTriggerKind.Automatic
    )
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )
