"""Smoke tests of the headless Neovim harness, with and without the real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.editors.nvim import nvim_binary, run_nvim


def test_binary_is_in_this_environment() -> None:
    assert nvim_binary().is_file()


def test_script_results_come_back_as_json(tmp_path: Path) -> None:
    script = """
    T.out.version = { major = vim.version().major, minor = vim.version().minor }
    T.out.cwd = vim.uv.cwd()
    T.out.env_cache = vim.env.CODER_LSP_CACHE_DIR
    T.out.server_cmd = T.server_cmd
    """
    result = run_nvim(script, workspace=tmp_path, timeout=60)
    assert result["out"]["version"] == {"major": 0, "minor": 11}
    assert result["version"].startswith("0.11.")
    assert Path(result["out"]["cwd"]).resolve() == tmp_path.resolve()
    assert result["out"]["env_cache"].endswith(".cache/coder-lsp")
    assert result["out"]["server_cmd"][1:3] == ["-m", "lsp_server"]
    assert result["error"] is None and result["failures"] == []


def test_lua_errors_and_failed_waits_are_reported(tmp_path: Path) -> None:
    script = """
    T.out.before = 1
    T.wait(50, function() return false end, 'something that never happens')
    error('boom')
    """
    result = run_nvim(script, workspace=tmp_path, timeout=60, check=False)
    assert result["out"] == {"before": 1}
    assert "boom" in result["error"] and "stack traceback" in result["error"]
    assert result["failures"] == ["timed out after 50 ms waiting for something that never happens"]
    with pytest.raises(AssertionError, match="boom"):
        run_nvim(script, workspace=tmp_path, timeout=60)


def test_workspace_edit_semantics(tmp_path: Path) -> None:
    """What Neovim 0.11's apply_workspace_edit does with the edits coder-lsp's fixes send."""
    (tmp_path / "a.py").write_text("x = 1\n")
    script = """
    T.capture_edits()
    vim.cmd.edit('a.py')
    local buf = vim.api.nvim_get_current_buf()
    local uri = vim.uri_from_bufnr(buf)
    -- The version an attached client would have sent last (its b:changedtick).
    vim.lsp.util.buf_versions[buf] = 7
    local function doc_edit(u, version, text)
      local range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 5 } }
      return { textDocument = { uri = u, version = version },
               edits = { { range = range, newText = text, annotationId = 'fix' } } }
    end
    local apply = vim.lsp.util.apply_workspace_edit
    apply({ documentChanges = { doc_edit(uri, 6, 'x = 2') } }, 'utf-16')
    T.out.stale = T.buf_text()
    local annotations = { fix = { label = 'AI fix', needsConfirmation = true } }
    apply({ documentChanges = { doc_edit(uri, 7, 'x = 3') }, changeAnnotations = annotations },
          'utf-16')
    T.out.current_needs_confirmation = T.buf_text()
    local new_uri = vim.uri_from_fname(T.workspace .. '/new.py')
    apply({ documentChanges = { { kind = 'create', uri = new_uri }, doc_edit(uri, 6, 'x = 4') } },
          'utf-16')
    T.out.stale_second = T.buf_text()
    T.out.created = vim.uv.fs_stat(T.workspace .. '/new.py') ~= nil
    """
    result = run_nvim(script, workspace=tmp_path, timeout=60)
    out = result["out"]
    assert out["stale"] == "x = 1"  # refused: the buffer is newer than the edit
    assert "newer than edits" in result["messages"]
    assert out["current_needs_confirmation"] == "x = 3"  # applied, no confirmation asked
    assert out["stale_second"] == "x = 4"  # only documentChanges[1]'s version is checked
    assert out["created"] is True
    assert [e["ok"] for e in result["edits"]] == [True, True, True]
    first = result["edits"][0]
    uri = first["edit"]["documentChanges"][0]["textDocument"]["uri"]
    assert first["versions_before"] == {uri: 7}


def test_real_server_starts_and_stops(tmp_path: Path) -> None:
    """coder-lsp with tiny-moe: attaches, loads, advertises its providers, exits cleanly."""
    (tmp_path / "example.py").write_text('def greet(name):\n    return "hello " + name\n')
    script = """
    local client = T.start_server({ file = 'example.py' })
    T.wait_ready(200000, client)
    T.out.ready_ms = T.elapsed_ms()
    T.out.clients = #vim.lsp.get_clients({ name = 'coder_lsp' })
    T.out.attached = vim.lsp.buf_is_attached(0, client.id)
    T.out.root_dir = client.root_dir
    T.out.offset_encoding = client.offset_encoding
    local caps = client.server_capabilities
    T.out.code_action_provider = caps.codeActionProvider or vim.NIL
    T.out.inline_completion_provider = caps.inlineCompletionProvider or vim.NIL
    T.out.stats = T.request(client, 'coderLsp/engineStats', vim.NIL)
    """
    result = run_nvim(script, workspace=tmp_path, timeout=300)
    out = result["out"]
    assert out["clients"] == 1 and out["attached"] is True
    assert Path(out["root_dir"]).resolve() == tmp_path.resolve()
    assert out["inline_completion_provider"] not in (None, False)
    assert out["stats"]["state"] == "ready" and out["stats"]["profile"] == "tiny-moe"
    states = [s["state"] for s in result["status"]]
    assert states[0] == "starting" and states[-1] == "ready"
    assert result["status"][-1]["profile"] == "tiny-moe"
    [stopped] = result["clients"]
    assert stopped["graceful"] and stopped["exit"] == {"code": 0, "signal": 0}
    assert result["stray_processes"] == []
