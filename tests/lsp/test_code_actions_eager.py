"""A client that cannot resolve code actions (Emacs 29's eglot) gets edits in the listing,
computed only when the user asks, with progress shown while the model runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.lsp.helpers import open_document, server_config, wait_ready
from tests.lsp.test_code_actions import NOTES, action_params, engine_requests, span, uri_of


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eager")


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    capabilities = client_capabilities("emacs")
    action = capabilities.text_document.code_action  # type: ignore[union-attr]
    assert action is not None and action.resolve_support is None
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=uri_of(workspace),
            initialization_options={
                "fixes": {"stop": ["e", "a", "o", "i"]},
                "workspace": {"index": False},
            },
        )
    )
    stats = await wait_ready(lsp_client)
    assert stats.state == "ready", stats.reason
    yield
    await lsp_client.shutdown_session()


async def test_edits_come_with_the_listing_only_when_asked(
    client: LanguageClient, workspace: Path
) -> None:
    uri = uri_of(workspace / "notes.txt")
    open_document(client, uri, NOTES, language="plaintext")
    problem = types.Diagnostic(range=span(3, 0, 3, 4), message="unknown word: egss")
    params = action_params(uri, span(3, 0, 3, 0), [problem])
    before = await engine_requests(client)

    params.context.trigger_kind = types.CodeActionTriggerKind.Automatic
    assert not await client.text_document_code_action_async(params)
    assert await engine_requests(client) == before, "no model call the user did not ask for"

    params.context.trigger_kind = types.CodeActionTriggerKind.Invoked
    actions = await client.text_document_code_action_async(params)

    assert actions is not None
    (action,) = actions
    assert isinstance(action, types.CodeAction)
    assert action.title == "Fix with AI: unknown word: egss"
    assert action.edit is not None and action.edit.document_changes
    change = action.edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 1
    assert await engine_requests(client) == before + 1
    reports = [
        r for token, rs in client.progress_reports.items() if "fix" in str(token) for r in rs
    ]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == "coder-lsp: Fix with AI: unknown word: egss"
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
