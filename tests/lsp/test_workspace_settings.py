"""Workspace settings changed while the server runs reach the workspace model: the index
follows `workspace.exclude`, and open documents stay known to the new model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier


async def _names(server: RawServer, query: str, n: list[int]) -> set[str]:
    n[0] += 1
    answer = await server.call(f"symbols-{n[0]}", "workspace/symbol", {"query": query})
    return {s["name"] for s in answer.get("result") or []}


async def _until(server: RawServer, query: str, wanted: set[str], n: list[int]) -> None:
    deadline = time.monotonic() + 30
    while (found := await _names(server, query, n)) != wanted:
        assert time.monotonic() < deadline, f"{query}: {found}, not {wanted}"
        await asyncio.sleep(0.2)


async def test_the_index_follows_workspace_exclude_changed_at_runtime(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def alpha_handler():\n    return 1\n")
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "lib.py").write_text("def alpha_vendored():\n    return 2\n")
    opened = tmp_path / "notes.py"
    opened.write_text("")  # on disk empty; the editor's text is what counts
    n = [0]

    def settings(exclude: list[str]) -> dict[str, Any]:
        return {"settings": {"coderLsp": {"workspace": {"exclude": exclude}}}}

    with StubOpenAI() as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            await server.initialize({"engine": engine}, root=tmp_path.as_uri())
            assert (await server.wait_ready(60))["state"] == "ready"
            item = {
                "uri": opened.as_uri(),
                "languageId": "python",
                "version": 1,
                "text": "def alpha_unsaved():\n    pass\n",
            }
            await server.notify("textDocument/didOpen", {"textDocument": item})
            everything = {"alpha_handler", "alpha_vendored", "alpha_unsaved"}
            await _until(server, "alpha", everything, n)

            await server.notify("workspace/didChangeConfiguration", settings(["vendor/**"]))
            await _until(server, "alpha", {"alpha_handler", "alpha_unsaved"}, n)

            await server.notify("workspace/didChangeConfiguration", settings([]))
            await _until(server, "alpha", everything, n)
        finally:
            await server.stop()
        text = server.stderr.decode(errors="replace")
        assert "Traceback" not in text, text[-3000:]
