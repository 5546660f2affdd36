"""Where a completion's time goes, as the real server reports it (`coderLsp/completionLog`'s
`stages`), and what a big document costs: the remote backend on a stub, raw stdio."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier

URI = "file:///workspace/big.py"
STAGES = {
    "request", "document", "gate", "context", "prompt", "engineQueue", "firstToken",
    "generation", "postprocess", "response",
}  # fmt: skip


def _inline(line: int, character: int) -> dict[str, Any]:
    return {
        "textDocument": {"uri": URI},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }


async def test_each_completion_says_where_its_time_went_even_in_a_big_document() -> None:
    head = "import os\n\n\ndef helper(value):\n    return value * 2\n\n\n"
    body = "".join(f"def f{i}(x):\n    return helper(x) + {i}\n\n\n" for i in range(20_000))
    text = head + body + "def main():\n    "
    last = text.count("\n")
    with StubOpenAI(reply=lambda prompt: "print(helper(1))") as stub:
        server = RawServer("--profile", "tiny-moe", env={"CODER_LSP_LOOP_PROBE_MS": "5"})
        await server.start()
        try:
            engine = {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"}
            options = {"engine": engine, "completion": {"cache": False, "candidates": 1}}
            await server.initialize(options)
            assert (await server.wait_ready(60))["state"] == "ready"
            item = {"uri": URI, "languageId": "python", "version": 1, "text": text}
            await server.notify("textDocument/didOpen", {"textDocument": item})
            column = 4
            for n, ch in enumerate("x = hel"):
                at = {"line": last, "character": column}
                change = {"range": {"start": at, "end": at}, "text": ch}
                await server.notify(
                    "textDocument/didChange",
                    {"textDocument": {"uri": URI, "version": 2 + n}, "contentChanges": [change]},
                )
                column += 1
                sent = time.perf_counter()
                answer = await server.call(
                    f"c{n}", "textDocument/inlineCompletion", _inline(last, column)
                )
                took = (server.arrived[f"c{n}"] - sent) * 1000
                assert answer["result"]["items"][0]["insertText"] == "print(helper(1))"
            log = (await server.call("log", "coderLsp/completionLog"))["result"]
            stats = (await server.call("stats", "coderLsp/engineStats"))["result"]
        finally:
            await server.stop()

    entry = log[-1]
    assert entry["version"] == 8 and entry["source"] == "engine"
    stages = entry["stages"]
    assert set(stages) >= STAGES, stages
    assert all(ms >= 0 for ms in stages.values()), stages
    # The stages cover the time from the frame read to the answer written, which the client
    # saw plus its own transport.
    assert sum(stages.values()) <= took + 1.0, (stages, took)
    # The prompt is the end of the document: the window, not a copy of 2 MB.
    prompt = [r for r in stub.requests if r.path.endswith("/completions")][-1].body["prompt"]
    assert "def main():\n    x = hel" in prompt and len(prompt) < 20_000
    lag = stats["loopLagMs"]
    assert lag is not None and lag["samples"] > 0
