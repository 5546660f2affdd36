"""What editors without ghost text or with completion menus meet (issue 15), on the real
server over raw stdio, the remote backend on a stub: the completion fallback keeps the typed
word, an inline completion extends the suggestion selected in the menu, and failing-test
diagnostics come again when their file is opened."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier

TEXT = "def total(values):\n    ret\n"


def _requests(server: RawServer, method: str) -> list[dict[str, Any]]:
    """The server's requests to the editor by `method` (RawServer answers them)."""
    return [m for m in server.requests if m.get("method") == method]


def _prompts(stub: StubOpenAI) -> list[str]:
    return [str(r.body["prompt"]) for r in stub.requests if r.path.endswith("/completions")]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RawServer, StubOpenAI, Path]]:
    with StubOpenAI(reply=lambda prompt: "urn sum(values)") as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            options = {"engine": engine, "completion": {"cache": False, "candidates": 1}}
            await server.initialize(options, root=tmp_path.as_uri())
            assert (await server.wait_ready(60))["state"] == "ready"
            yield server, stub, tmp_path
        finally:
            await server.stop()


async def _open(server: RawServer, uri: str, text: str) -> None:
    item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    await server.notify("textDocument/didOpen", {"textDocument": item})


def _apply(text: str, edit: dict[str, Any]) -> str:
    lines = text.split("\n")
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert start["line"] == end["line"]
    line = lines[start["line"]]
    lines[start["line"]] = line[: start["character"]] + edit["newText"] + line[end["character"] :]
    return "\n".join(lines)


async def test_the_completion_fallback_keeps_the_typed_word(
    served: tuple[RawServer, StubOpenAI, Path],
) -> None:
    """eglot inserts the label, then applies the edit; Helix filters by `filterText`: the
    item replaces the word typed so far with that word and the completion."""
    server, _, root = served
    uri = (root / "calc.py").as_uri()
    await _open(server, uri, TEXT)
    params = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 7}}
    answer = await server.call("c", "textDocument/completion", params)
    (item,) = answer["result"]["items"]
    edit = item["textEdit"]
    assert edit["range"] == {
        "start": {"line": 1, "character": 4},
        "end": {"line": 1, "character": 7},
    }
    assert edit["newText"] == "return sum(values)"
    assert item["filterText"].startswith("ret") and item["label"].startswith("ret")
    assert _apply(TEXT, edit) == "def total(values):\n    return sum(values)\n"


async def test_an_inline_completion_extends_the_selected_menu_item(
    served: tuple[RawServer, StubOpenAI, Path],
) -> None:
    """LSP 3.18 `selectedCompletionInfo`: the prompt reads the document with the selected
    item in place, and the answer replaces its range with its text and what follows."""
    server, stub, root = served
    uri = (root / "calc.py").as_uri()
    await _open(server, uri, TEXT)
    selected = {
        "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 7}},
        "text": "return",
    }
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": 1, "character": 7},
        "context": {"triggerKind": 1, "selectedCompletionInfo": selected},
    }
    answer = await server.call("i", "textDocument/inlineCompletion", params)
    (item,) = answer["result"]["items"]
    assert item["range"] == selected["range"]
    assert item["insertText"] == "return" + "urn sum(values)"
    assert "def total(values):\n    return" in _prompts(stub)[-1]
    assert "    ret\n" not in _prompts(stub)[-1]


CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


async def test_failing_test_diagnostics_come_again_when_the_file_opens(tmp_path: Path) -> None:
    """Diagnostics published before a file is open are dropped by some clients (eglot): the
    server sends them again on `didOpen`."""
    (tmp_path / "calc.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TEST_CALC)
    (tmp_path / "conftest.py").write_text("")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    done = subprocess.run(
        [*command, f"--junitxml={tmp_path / 'junit.xml'}"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout
    uri = (tmp_path / "tests" / "test_calc.py").as_uri()

    def published() -> list[dict[str, Any]]:
        return [
            n["params"]
            for n in server.notifications
            if n.get("method") == "textDocument/publishDiagnostics"
            and n["params"]["uri"] == uri
            and n["params"]["diagnostics"]
        ]

    with StubOpenAI(reply=lambda prompt: "") as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            await server.initialize({"engine": engine}, root=tmp_path.as_uri())
            deadline = time.monotonic() + 30
            while not published():
                assert time.monotonic() < deadline, "the report was never published"
                await asyncio.sleep(0.05)
            before = len(published())
            await _open(server, uri, TEST_CALC)
            deadline = time.monotonic() + 10
            while len(published()) == before:
                assert time.monotonic() < deadline, "not published again on didOpen"
                await asyncio.sleep(0.05)
            (again,) = published()[-1]["diagnostics"]
            assert "test_add failed" in again["message"]
            assert again["range"]["start"]["line"] == 4
        finally:
            await server.stop()


CALC_BUG = "def add(a, b):\n    return a - b\n"
FIXED_ANSWER = "```python\ndef add(a, b):\n    return a + b\n```\n"


async def test_a_client_that_cannot_resolve_gets_its_listing_in_time(tmp_path: Path) -> None:
    """eglot cannot resolve code actions and gives up on a listing after 10 s: the listing
    answers within 2 s, an action whose edit is not ready yet carries a command, and running
    it sends the edit once computed (`workspace/applyEdit`), for the editor to apply."""
    (tmp_path / "calc.py").write_text(CALC_BUG)
    uri = (tmp_path / "calc.py").as_uri()
    with StubOpenAI(reply=lambda prompt: FIXED_ANSWER) as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            capabilities = {
                "window": {"workDoneProgress": True},
                "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}},
                "textDocument": {"codeAction": {"dataSupport": True}},  # no resolveSupport
            }
            await server.call(
                0,
                "initialize",
                {
                    "processId": None,
                    "rootUri": tmp_path.as_uri(),
                    "capabilities": capabilities,
                    "initializationOptions": {"engine": engine, "workspace": {"index": False}},
                },
            )
            await server.notify("initialized", {})
            assert (await server.wait_ready(60))["state"] == "ready"
            await _open(server, uri, CALC_BUG)
            stub.delay_s = 3.0  # the model takes longer than a listing may
            at = {"line": 1, "character": 11}
            diagnostic = {"range": {"start": at, "end": at}, "message": "add subtracts"}
            params = {
                "textDocument": {"uri": uri},
                "range": {"start": at, "end": at},
                "context": {"diagnostics": [diagnostic], "triggerKind": 1},
            }
            started = time.monotonic()
            listing = await server.call("list", "textDocument/codeAction", params)
            assert time.monotonic() - started < 2.0
            titles = [a["title"] for a in listing["result"]]
            assert titles == ["Fix with AI: add subtracts", "Generate unit tests for add"]
            action = listing["result"][0]
            assert "edit" not in action or action["edit"] is None
            command = action["command"]
            assert command["command"] == "coderLsp.applyCodeAction"

            await server.request("run", "workspace/executeCommand", {
                "command": command["command"], "arguments": command["arguments"],
            })  # fmt: skip
            deadline = time.monotonic() + 30
            while not (edits := _requests(server, "workspace/applyEdit")):
                assert time.monotonic() < deadline, "no workspace/applyEdit came"
                await asyncio.sleep(0.05)
            (request,) = edits  # answered by RawServer
            assert "error" not in await server.response("run")
            change = request["params"]["edit"]["documentChanges"][0]
            assert change["textDocument"]["uri"] == uri
            (edit,) = change["edits"]
            assert _apply(CALC_BUG, edit) == "def add(a, b):\n    return a + b\n"
        finally:
            await server.stop()
