"""Secret redaction over the whole LSP path: `coder-lsp serve --stdio` on a workspace of planted
fake secrets, the remote backend pointed at a recording OpenAI-compatible stub on 127.0.0.1.

Everything the server sends to the stub (completion prompts with context from other files, a
fix prompt, the texts sent to `/tokenize`) is checked for the planted values and any
8-character piece of one. The stub answers with a placeholder it was shown, so the test also
sees what comes back to the editor: the value, never a placeholder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient, client_capabilities

from bench.secret_corpus import CorpusFile, leaks, planted_corpus, write
from lsp_server.privacy import PLACEHOLDER_PATTERN
from tests.lsp.helpers import inline_params, items, open_document, server_config, wait_ready
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier

FILES = planted_corpus(seed=7, copies=1)
PLANTED = [p for f in FILES for p in f.planted]


def _echo_placeholder(prompt: str) -> str:
    shown = PLACEHOLDER_PATTERN.findall(prompt)
    return f"value = {shown[-1]}\n" if shown else "value = 1\n"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAI]:
    with StubOpenAI(reply=_echo_placeholder) as server:
        yield server


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secrets")
    write(FILES, root)
    return root


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient, stub: StubOpenAI, workspace: Path):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=from_fs_path(str(workspace)),
            initialization_options={
                "engine": {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"},
                "completion": {"maxTokens": 16, "cache": False},
            },
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


def _end_of_secret_lines(f: CorpusFile) -> list[types.Position]:
    lines = f.text.split("\n")
    out = []
    for _, value in f.planted:
        first = value.split("\n")[0]
        for n, line in enumerate(lines):
            if first in line:
                out.append(types.Position(line=n, character=len(line)))
                break
    return out


async def test_nothing_planted_reaches_the_endpoint(
    client: LanguageClient, stub: StubOpenAI, workspace: Path
) -> None:
    asked = 0
    for f in FILES:
        uri = from_fs_path(str(workspace / f.path)) or ""
        open_document(client, uri, f.text, language=f.language_id)
        for pos in _end_of_secret_lines(f):
            result = await client.text_document_inline_completion_async(
                inline_params(uri, pos.line, pos.character, invoked=True)
            )
            asked += 1
            assert result is not None
            for item in items(result):
                text = item.insert_text if isinstance(item.insert_text, str) else ""
                # A placeholder the model echoed came back as the value; none is shown.
                assert not PLACEHOLDER_PATTERN.search(text), text

    # A fix through a code action, on the function that holds a password.
    payments = next(f for f in FILES if f.path.endswith("payments.py"))
    uri = from_fs_path(str(workspace / payments.path)) or ""
    line = payments.text.split("\n").index("def connect_db():") + 1
    where = types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line + 1, character=0)
    )
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=where,
            context=types.CodeActionContext(
                diagnostics=[], trigger_kind=types.CodeActionTriggerKind.Invoked
            ),
        )
    )
    assert actions
    fix = next(a for a in actions if isinstance(a, types.CodeAction) and "selection" in a.title)
    await client.code_action_resolve_async(fix)

    completions = [r for r in stub.requests if r.path.endswith("/completions")]
    tokenized = [r for r in stub.requests if r.path == "/tokenize"]
    print(f"{asked} completions asked, {len(completions)} prompts, {len(tokenized)} /tokenize")
    assert asked >= 60 and len(completions) >= 40 and tokenized
    assert any("<redacted:" in str(r.body["prompt"]) for r in completions)
    assert any(
        "Fix" in str(r.body["prompt"]) or "corrected" in str(r.body["prompt"]) for r in completions
    )
    for prompt in stub.prompts():
        found = leaks(prompt, PLANTED)
        assert found == [], found[:3]
