"""Every LSP feature of the real server, over stdio, on the scripted backend: the remote
engine pointed at the recording stub (no vLLM to load), whose answers are chosen here, so each
result is known to the character.

This is the fast server tier (`make check`, marker `scripted`); what needs a real model is in
the engine tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted

CALC_BUG = "def add(a, b):\n    return a - b\n"
AREA = "def area(width, height):\n    return width * height\n"
FENCE = "`" * 3


def reply(prompt: str) -> str:
    """What the scripted model answers: a fix of `add`, or a completion."""
    if "return a - b" in prompt and FENCE in prompt:
        return f"def add(a, b):\n    return a + b\n{FENCE}\n"
    return "total = area(2, 3)"


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[tuple[RawServer, StubOpenAI, Path]]:
    (tmp_path / "calc.py").write_text(CALC_BUG)
    (tmp_path / "shapes.py").write_text(AREA)
    with StubOpenAI(reply=reply) as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            options = {
                "engine": {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"},
                "completion": {"cache": False, "candidates": 1},
            }
            await server.initialize(options, root=tmp_path.as_uri())
            assert (await server.wait_ready(60))["state"] == "ready"
            yield server, stub, tmp_path
        finally:
            await server.stop()


async def open_file(server: RawServer, path: Path, version: int = 1) -> str:
    uri = path.as_uri()
    item = {"uri": uri, "languageId": "python", "version": version, "text": path.read_text()}
    await server.notify("textDocument/didOpen", {"textDocument": item})
    return uri


def position(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


def inline_params(uri: str, at: dict[str, int]) -> dict[str, Any]:
    """An automatic inline completion's params."""
    return {"textDocument": {"uri": uri}, "position": at, "context": {"triggerKind": 1}}


def fix_params(uri: str) -> dict[str, Any]:
    """Code actions for the bug in `calc.py`, with its diagnostic."""
    diagnostic = {
        "range": {"start": position(1, 11), "end": position(1, 16)},
        "message": "add subtracts: expected a + b",
        "severity": 1,
    }
    return {
        "textDocument": {"uri": uri},
        "range": diagnostic["range"],
        "context": {"diagnostics": [diagnostic], "triggerKind": 1},
    }


async def test_completions_inline_and_in_the_menu(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, stub, root = session
    main = root / "main.py"
    main.write_text("from shapes import area\n\n\ndef main():\n    \n")
    uri = await open_file(server, main)
    at = position(4, 4)
    inline = await server.call(
        "inline",
        "textDocument/inlineCompletion",
        inline_params(uri, at),
    )
    [item] = inline["result"]["items"]
    assert item["insertText"] == "total = area(2, 3)"
    assert item["range"] == {"start": at, "end": at}
    # The prompt reached the backend with the code before and after the cursor.
    prompt = stub.prompts()[-1]
    assert "def main():\n    " in prompt and "from shapes import area" in prompt

    # A keystroke, then the completion menu's item for the same place.
    change = {"range": {"start": at, "end": at}, "text": "t"}
    await server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]},
    )
    menu = await server.call(
        "menu",
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": position(4, 5)},
    )
    result = menu["result"]
    items = result["items"] if isinstance(result, dict) else result
    assert any("area(2, 3)" in (i.get("insertText") or i["label"]) for i in items), items

    log = (await server.call("log", "coderLsp/completionLog"))["result"]
    assert log[-1]["uri"] == uri and log[-1]["source"] == "engine"
    requests = (await server.call("requests", "coderLsp/requestLog"))["result"]
    assert requests and requests[-1]["status"] == "finished"

    # Closed: a completion there is refused quietly, and the server goes on.
    await server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    gone = await server.call(
        "gone",
        "textDocument/inlineCompletion",
        inline_params(uri, at),
    )
    assert "error" not in gone and not (gone["result"] or {}).get("items")


async def test_symbols_of_the_workspace_and_of_a_document(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, _, root = session
    found: list[Any] = []
    for n in range(100):  # the index is built in the background
        found = (await server.call(f"ws{n}", "workspace/symbol", {"query": "area"}))["result"]
        if found:
            break
        await asyncio.sleep(0.1)
    assert any(s["name"] == "area" and s["location"]["uri"].endswith("shapes.py") for s in found)
    uri = await open_file(server, root / "calc.py")
    symbols = (
        await server.call("doc", "textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    )["result"]
    assert [s["name"] for s in symbols] == ["add"]


async def test_a_file_written_on_disk_is_indexed_when_the_editor_says_so(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, _, root = session
    (root / "later.py").write_text("def written_later():\n    return 1\n")
    await server.notify(
        "workspace/didChangeWatchedFiles",
        {"changes": [{"uri": (root / "later.py").as_uri(), "type": 1}]},
    )
    found: list[Any] = []
    for n in range(100):
        query = {"query": "written_later"}
        found = (await server.call(f"later{n}", "workspace/symbol", query))["result"]
        if found:
            break
        await asyncio.sleep(0.1)
    assert [s["location"]["uri"] for s in found] == [(root / "later.py").as_uri()]


async def test_a_cancelled_completion_is_answered_and_the_next_one_served(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, stub, root = session
    uri = await open_file(server, root / "shapes.py")
    params = inline_params(uri, position(2, 0))
    stub.delay_s = 2.0  # a slow model: the request is still running when it is cancelled
    await server.request("slow", "textDocument/inlineCompletion", params)
    await asyncio.sleep(0.3)
    await server.notify("$/cancelRequest", {"id": "slow"})
    cancelled = await server.response("slow", 10)
    assert cancelled.get("error", {}).get("code") == -32800 or not (
        cancelled.get("result") or {}
    ).get("items"), cancelled
    stub.delay_s = 0.0
    again = await server.call("again", "textDocument/inlineCompletion", params)
    assert again["result"]["items"][0]["insertText"] == "total = area(2, 3)"


async def test_a_fix_comes_as_an_edit_and_is_logged(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, _, root = session
    uri = await open_file(server, root / "calc.py")
    params = fix_params(uri)
    listing = (await server.call("actions", "textDocument/codeAction", params))["result"]
    fixes = [a for a in listing if a.get("kind", "").startswith("quickfix")]
    assert fixes, listing
    # This client declares no `resolveSupport`: the edit comes with the listing (it asked).
    edit = fixes[0]["edit"]
    [edits] = (
        [c["edits"] for c in edit["documentChanges"]]
        if "documentChanges" in edit
        else list(edit["changes"].values())
    )
    new_text = CALC_BUG
    lines = new_text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e["range"]["start"]["line"], reverse=True):
        start, end = edit["range"]["start"], edit["range"]["end"]
        head = "".join(lines[: start["line"]]) + lines[start["line"]][: start["character"]]
        tail = lines[end["line"]][end["character"] :] if end["line"] < len(lines) else ""
        tail += "".join(lines[end["line"] + 1 :])
        new_text = head + edit["newText"] + tail
        lines = new_text.splitlines(keepends=True)
    assert new_text == "def add(a, b):\n    return a + b\n"
    fix_log = (await server.call("fixlog", "coderLsp/fixLog"))["result"]
    outcomes = {(entry["action"], entry["outcome"]) for entry in fix_log if entry["uri"] == uri}
    assert ("fix", "edit") in outcomes, fix_log


async def test_a_client_that_resolves_gets_the_edit_on_resolve(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text(CALC_BUG)
    with StubOpenAI(reply=reply) as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            resolve = {"dataSupport": True, "resolveSupport": {"properties": ["edit"]}}
            await server.call(
                0,
                "initialize",
                {
                    "processId": None,
                    "rootUri": tmp_path.as_uri(),
                    "capabilities": {"textDocument": {"codeAction": resolve}},
                    "initializationOptions": {"engine": engine},
                },
            )
            await server.notify("initialized", {})
            assert (await server.wait_ready(60))["state"] == "ready"
            uri = await open_file(server, tmp_path / "calc.py")
            params = fix_params(uri)
            listing = (await server.call("actions", "textDocument/codeAction", params))["result"]
            fix = next(a for a in listing if a["kind"].startswith("quickfix"))
            assert "edit" not in fix and not stub.completion_bodies()  # listed, not yet run
            resolved = (await server.call("resolve", "codeAction/resolve", fix))["result"]
        finally:
            await server.stop()
    edit = resolved["edit"]
    changes = (
        [e for c in edit["documentChanges"] for e in c["edits"]]
        if "documentChanges" in edit
        else [e for edits in edit["changes"].values() for e in edits]
    )
    assert [c["newText"] for c in changes] == ["+"]
    assert changes[0]["range"] == {"start": position(1, 13), "end": position(1, 14)}


async def test_settings_status_and_a_clean_exit(
    session: tuple[RawServer, StubOpenAI, Path],
) -> None:
    server, stub, _ = session
    stats = (await server.call("stats", "coderLsp/engineStats"))["result"]
    assert stats["state"] == "ready"
    assert stub.url in str(stats)
    await server.notify(
        "workspace/didChangeConfiguration",
        {"settings": {"coderLsp": {"completion": {"maxTokens": 7}}}},
    )
    await asyncio.sleep(0.2)
    assert (await server.call("stats2", "coderLsp/engineStats"))["result"]["state"] == "ready"
    answer = await server.call("bye", "shutdown", None)
    assert answer.get("result") is None and "error" not in answer
    await server.notify("exit", None)
    assert server.proc is not None
    assert await asyncio.wait_for(server.proc.wait(), 30) == 0
