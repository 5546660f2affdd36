"""A whole editor session over stdio, with VS Code's and Neovim's client capabilities.

The engine is the real embedded vLLM running `tiny-moe`.
"""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient, client_capabilities

from engine.machine import cpu_features, plan_engine
from tests.lsp.helpers import (
    engine_stats,
    inline_params,
    items,
    open_document,
    server_config,
    wait_ready,
)

URI = "file:///workspace/example.py"
TEXT = 'import os\n\n\ndef read_config(path):\n    """Read a config file."""\n    \n'


@pytest_lsp.fixture(
    config=server_config(),
    params=["visual-studio-code", "neovim"],
    scope="module",
)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri="file:///workspace",
        )
    )
    lsp_client.initialize_result = result  # type: ignore[attr-defined]
    # Answered before the engine loaded: the state is still "starting" right after.
    lsp_client.state_after_initialize = (await engine_stats(lsp_client)).state  # type: ignore[attr-defined]
    lsp_client.early_answer = await lsp_client.text_document_inline_completion_async(  # type: ignore[attr-defined]
        inline_params("file:///workspace/early.py", 0, 0)
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


async def test_capabilities(client: LanguageClient) -> None:
    caps = client.initialize_result.capabilities  # type: ignore[attr-defined]
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    sync = caps.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Incremental


async def test_engine_stats_name_the_cpu_dtype_and_attention_backend(
    client: LanguageClient,
) -> None:
    cpu = cpu_features()
    expected = plan_engine(None, None, cpu=cpu, mla=True)
    stats = await engine_stats(client)
    assert (stats.dtype, stats.attentionBackend) == (expected.dtype, expected.attention_backend)
    assert (stats.cpu.amx, stats.cpu.avx512Bf16) == (cpu.amx, cpu.avx512_bf16)
    assert stats.cpu.model == cpu.model


async def test_initialize_answered_while_engine_starts(client: LanguageClient) -> None:
    assert client.state_after_initialize == "starting"  # type: ignore[attr-defined]
    assert list(client.early_answer.items) == []  # type: ignore[attr-defined]


async def test_engine_loading_progress(client: LanguageClient) -> None:
    reports = client.progress_reports.get("coder-lsp/engine", [])
    kinds = [type(r).__name__ for r in reports]
    assert kinds[0] == "WorkDoneProgressBegin"
    assert "WorkDoneProgressReport" in kinds
    assert kinds[-1] == "WorkDoneProgressEnd"
    last = reports[-1]
    assert isinstance(last, types.WorkDoneProgressEnd) and last.message == "ready"


async def test_incremental_change_then_inline_completion(client: LanguageClient) -> None:
    open_document(client, URI, TEXT)
    # Type "with open(" on the empty body line (line 5, after the indentation).
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=5, character=4),
                        end=types.Position(line=5, character=4),
                    ),
                    text="with open(",
                )
            ],
        )
    )
    result = await client.text_document_inline_completion_async(inline_params(URI, 5, 14))
    assert isinstance(result, types.InlineCompletionList)
    assert len(result.items) == 1
    item = result.items[0]
    assert isinstance(item.insert_text, str) and item.insert_text.strip()
    assert item.range == types.Range(
        start=types.Position(line=5, character=14), end=types.Position(line=5, character=14)
    )


async def test_completion_one_item_with_whole_text(client: LanguageClient) -> None:
    uri = "file:///workspace/other.py"
    open_document(client, uri, "def add(a, b):\n    return ")
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=11),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert len(result.items) == 1
    item = result.items[0]
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text.strip()
    assert item.label.strip()


@pytest.mark.parametrize(
    ("text", "line", "character"),
    [
        pytest.param("x = 1\n", 5, 0, id="line-past-end"),
        pytest.param("x = 1\n", 0, 40, id="character-past-line"),
        pytest.param("s = '\U0001f600'\n", 0, 6, id="inside-surrogate-pair"),
    ],
)
async def test_invalid_position_is_an_error_not_a_crash(
    client: LanguageClient, text: str, line: int, character: int
) -> None:
    uri = f"file:///workspace/bad-{line}-{character}.py"
    open_document(client, uri, text)
    with pytest.raises(JsonRpcInvalidParams):
        await client.text_document_inline_completion_async(inline_params(uri, line, character))
    # The server is still there and answers.
    assert (await engine_stats(client)).state == "ready"


async def test_surrogate_pair_position_after_emoji(client: LanguageClient) -> None:
    uri = "file:///workspace/emoji.py"
    open_document(client, uri, "s = '\U0001f600'\nt = ")
    # Character 7 is just after the emoji's two UTF-16 code units: valid.
    result = await client.text_document_inline_completion_async(inline_params(uri, 0, 7))
    assert isinstance(result, types.InlineCompletionList)


async def test_binary_document_gets_no_suggestion(client: LanguageClient) -> None:
    uri = "file:///workspace/blob.py"
    open_document(client, uri, "x = 1\x00\x01\x02\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    assert items(result) == []
