"""The workspace over LSP: symbols, disk changes without LSP messages, cross-file context."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.lsp.helpers import inline_params, items, open_document, server_config, wait_ready

GEOMETRY = '''"""Shapes."""

import math

PI_ISH = 3.14


def area_of_circle(radius: float) -> float:
    """Area of a circle with the given radius."""
    return math.pi * radius**2


class Shape:
    """A closed figure."""

    def perimeter(self) -> float:
        """Length of the boundary."""
        raise NotImplementedError
'''

APP = """from pkg.geometry import area_of_circle


def report(r):
    a = area_of_circle(
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "geometry.py").write_text(GEOMETRY)
    (root / "app.py").write_text(APP)
    (root / "ignored").mkdir()
    (root / "ignored" / "secret.py").write_text("def hidden_function():\n    pass\n")
    (root / ".gitignore").write_text("ignored/\n")
    return root


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
        )
    )
    await _wait_indexed(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def _wait_indexed(client: LanguageClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = client.progress_reports.get("coder-lsp/index", [])
        if reports and isinstance(reports[-1], types.WorkDoneProgressEnd):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("indexing did not finish")


async def _symbols(client: LanguageClient, query: str) -> list[Any]:
    result = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query=query))
    return list(result or [])


async def test_workspace_symbol_finds_definitions(client: LanguageClient, workspace: Path) -> None:
    found = await _symbols(client, "area_of")
    assert found and found[0].name == "area_of_circle"
    assert found[0].location.uri == (workspace / "pkg" / "geometry.py").as_uri()
    assert found[0].kind == types.SymbolKind.Function
    methods = await _symbols(client, "perimeter")
    assert methods[0].container_name == "Shape"


async def test_gitignored_files_are_not_indexed(client: LanguageClient) -> None:
    assert await _symbols(client, "hidden_function") == []


async def test_document_symbols_are_hierarchical(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "pkg" / "geometry.py").as_uri()
    open_document(client, uri, GEOMETRY)
    result = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert result is not None
    symbols = [s for s in result if isinstance(s, types.DocumentSymbol)]
    assert len(symbols) == len(result), "hierarchical symbols, not flat ones"
    by_name = {s.name: s for s in symbols}
    assert {"PI_ISH", "area_of_circle", "Shape"} <= set(by_name)
    shape = by_name["Shape"]
    assert [c.name for c in shape.children or ()] == ["perimeter"]
    assert shape.selection_range.start == types.Position(line=12, character=6)


async def test_disk_change_is_indexed_without_lsp_messages(
    client: LanguageClient, workspace: Path
) -> None:
    (workspace / "pkg" / "extra.py").write_text("def brand_new_function():\n    return 1\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await _symbols(client, "brand_new_function"):
            break
        await asyncio.sleep(0.05)
    found = await _symbols(client, "brand_new_function")
    assert found and found[0].location.uri.endswith("/pkg/extra.py")


async def test_prompt_carries_a_cross_file_definition(
    client: LanguageClient, workspace: Path
) -> None:
    stats = await wait_ready(client)
    assert stats.state == "ready", stats.reason
    uri = (workspace / "app.py").as_uri()
    open_document(client, uri, APP)
    await client.text_document_inline_completion_async(inline_params(uri, 4, 23))
    log = await client.protocol.send_request_async("coderLsp/requestLog", None)
    prompt = log[-1]["prompt"]
    # The definition lives only in pkg/geometry.py; the prompt carries its signature and doc.
    assert "def area_of_circle(radius: float) -> float:" in prompt
    assert "Area of a circle with the given radius." in prompt
    assert "pkg/geometry.py" in prompt


async def test_huge_and_binary_documents_do_not_stall_the_server(
    client: LanguageClient, workspace: Path
) -> None:
    stats = await wait_ready(client)
    assert stats.state == "ready", stats.reason
    line = "value = compute(value) + 1  # a line of a generated file\n"
    huge = line * (50 * 1024 * 1024 // len(line)) + "result = "
    uri = (workspace / "huge.py").as_uri()
    started = time.monotonic()
    open_document(client, uri, huge)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert list(symbols or []) == []  # too large to parse: no symbols, no error
    last = huge.count("\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, last, 9))
    assert isinstance(result, types.InlineCompletionList)
    assert time.monotonic() - started < 60
    blob = (workspace / "blob.bin").as_uri()
    open_document(client, blob, "\x00\x01binary\x00", language="plaintext")
    result = await client.text_document_inline_completion_async(inline_params(blob, 0, 0))
    assert items(result) == []
    # Still answering other requests.
    assert await _symbols(client, "area_of_circle")
