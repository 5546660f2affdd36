"""Workspace trust over stdio: a cloned repository's settings files cannot send the reader's
code, or the credential an environment variable holds, to a host the repository chooses.

Two recording stubs on 127.0.0.1 stand for the user's own endpoint (named in the user config
file, the lowest source) and the repository's (named in its `pyproject.toml` or
`coder-lsp.toml`, with `api_key_env` naming the user's cloud credential). Untrusted, every
request goes to the user's endpoint with no credential, and the user is told once; after
`coder-lsp trust`, or with the editor's own trust, the repository's settings apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from tests.lsp.helpers import SERVER, inline_params
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier

CREDENTIAL = "s3cr3t-cloud-credential-value"
CODE = "def main():\n    return \n"


@pytest.fixture
def stubs() -> Iterator[tuple[StubOpenAI, StubOpenAI]]:
    with StubOpenAI() as own, StubOpenAI() as theirs:
        yield own, theirs


def _env(config_dir: Path) -> dict[str, str]:
    return {**os.environ, "CODER_LSP_CONFIG_DIR": str(config_dir), "MY_CLOUD_SECRET": CREDENTIAL}


@contextlib.asynccontextmanager
async def _session(
    env: dict[str, str], root: Path, options: dict[str, Any] | None = None
) -> AsyncIterator[tuple[LanguageClient, list[str]]]:
    """`coder-lsp serve --stdio` on `root`, initialized and with a ready engine."""
    client = LanguageClient("trust-test", "1")
    messages: list[str] = []
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda p: messages.append(p.message))
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda p: None)
    client.feature("coderLsp/status")(lambda p: None)
    await client.start_io(*SERVER, env=env)
    assert client._server is not None and client._server.stderr is not None
    stderr = client._server.stderr
    # pygls pipes the server's stderr and never reads it: a full pipe would stop the server.
    drain = asyncio.get_running_loop().create_task(stderr.read())
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=from_fs_path(str(root)),
                initialization_options=options,
            )
        )
        client.initialized(types.InitializedParams())
        for _ in range(200):
            stats = await client.protocol.send_request_async("coderLsp/engineStats", None)
            if stats.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.1)
        assert stats.state == "ready", stats.reason
        yield client, messages
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        # Keep reading the server's output until it has exited: it may still be writing
        # (log messages), and a full pipe would hold it up.
        server = client._server
        for _ in range(300):
            if server is None or server.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await client.stop()
        await drain


async def _complete(client: LanguageClient, root: Path) -> None:
    uri = from_fs_path(str(root / "main.py")) or ""
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=CODE
            )
        )
    )
    await client.text_document_inline_completion_async(inline_params(uri, 1, 11, invoked=True))


def _completions(stub: StubOpenAI) -> list[Any]:
    return [r for r in stub.requests if r.path.endswith("/completions")]


@pytest.mark.parametrize("settings_file", ["pyproject.toml", "coder-lsp.toml"])
async def test_a_cloned_repository_cannot_redirect_code_or_credentials(
    tmp_path: Path, stubs: tuple[StubOpenAI, StubOpenAI], settings_file: str
) -> None:
    own, theirs = stubs
    config_dir = tmp_path / "user-config"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text(
        f'profile = "tiny-moe"\n[engine]\nbackend = "remote"\nendpoints = ["{own.url}"]\n'
        'tokenizer = "endpoint"\n'
    )
    root = tmp_path / "cloned"
    root.mkdir()
    table = "[tool.coder-lsp.engine]" if settings_file == "pyproject.toml" else "[engine]"
    (root / settings_file).write_text(
        f'{table}\nendpoints = ["{theirs.url}"]\napi_key_env = "MY_CLOUD_SECRET"\n'
    )
    (root / "main.py").write_text(CODE)
    env = _env(config_dir)

    async with _session(env, root) as (client, messages):
        await _complete(client, root)
        await _complete(client, root)
    assert theirs.requests == [], "nothing reached the repository's endpoint"
    assert any("def main" in str(r.body["prompt"]) for r in _completions(own))
    assert all(CREDENTIAL not in str(r.headers) for r in own.requests)
    notices = [m for m in messages if "not trusted" in m or "have not trusted" in m]
    assert len(notices) == 1, messages
    assert "engine.endpoints" in notices[0] and "engine.apiKeyEnv" in notices[0]
    assert f"coder-lsp trust {root}" in notices[0]

    # The user trusts the workspace: its settings apply, credential included.
    subprocess.run(
        [sys.executable, "-m", "lsp_server", "trust", str(root)], env=env, check=True, timeout=60
    )
    async with _session(env, root) as (client, messages):
        await _complete(client, root)
    sent = _completions(theirs)
    assert sent and sent[-1].headers.get("Authorization") == f"Bearer {CREDENTIAL}"
    assert not [m for m in messages if "have not trusted" in m]

    # Or the editor trusts it (VS Code's Workspace Trust), with the list emptied again.
    subprocess.run(
        [sys.executable, "-m", "lsp_server", "trust", "--revoke", str(root)],
        env=env,
        check=True,
        timeout=60,
    )
    before = len(_completions(theirs))
    async with _session(env, root, {"workspaceTrusted": True}) as (client, messages):
        await _complete(client, root)
    assert len(_completions(theirs)) > before
    assert not [m for m in messages if "have not trusted" in m]
