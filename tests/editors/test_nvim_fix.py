"""Headless Neovim 0.11 applies coder-lsp's "Fix with AI" action from the real server.

The problem comes from another source (a diagnostic Neovim holds in its own namespace, as a
linter would publish), passed to `vim.lsp.buf.code_action` in its context; the action list is
filtered to the fix, Neovim resolves it with the server (tiny-moe as the edit model) and applies
the returned edit. tiny-moe's text is random, so its answers are ended early by extra stop
sequences and the document is plain text: the path is what is checked, and that the buffer
changed exactly as the returned edit says.
"""

from __future__ import annotations

from pathlib import Path

from tests.editors.nvim import apply_edits, run_nvim

NOTES = "Shopping list\nmilk\nbread\negss\n\nNotes\ncall mom\n"

SCRIPT = """
T.capture_edits()
local client = T.start_server({
  file = 'notes.txt',
  filetypes = { 'text' },
  init_options = {
    fixes = { stop = { 'e', 'a', 'o', 'i' }, maxTokens = 64 },
    workspace = { index = false },
  },
})
T.wait_ready(200000, client)
T.out.before = T.buf_text()
T.out.version_before = vim.lsp.util.buf_versions[vim.api.nvim_get_current_buf()]

-- A spell checker's diagnostic, in a namespace of its own.
local ns = vim.api.nvim_create_namespace('spell-test')
vim.diagnostic.set(ns, 0, {
  { lnum = 3, col = 0, end_lnum = 3, end_col = 4, message = 'unknown word: egss',
    severity = vim.diagnostic.severity.WARN, source = 'spell' },
})
vim.api.nvim_win_set_cursor(0, { 4, 0 })
local titles = {}
local context = {
  only = { 'quickfix' },
  diagnostics = vim.lsp.diagnostic.from(vim.diagnostic.get(0, { lnum = 3 })),
}
vim.lsp.buf.code_action({
  context = context,
  filter = function(action)
    table.insert(titles, action.title)
    return vim.startswith(action.title, 'Fix with AI')
  end,
  apply = true,
})
T.must_wait(120000, function() return #T.edits > 0 end, 'the fix to be applied')
T.out.titles = titles
T.out.after = T.buf_text()
T.out.fix_log = T.request(client, 'coderLsp/fixLog', vim.NIL)
"""


def test_fix_action_is_listed_resolved_and_applied(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(NOTES)

    result = run_nvim(SCRIPT, workspace=tmp_path, timeout=300)

    out = result["out"]
    assert out["before"] == NOTES.removesuffix("\n")
    assert "Fix with AI: unknown word: egss" in out["titles"]
    (applied,) = result["edits"]
    assert applied["ok"], applied
    (change,) = applied["edit"]["documentChanges"]
    assert change["textDocument"]["version"] == out["version_before"]
    expected = apply_edits(NOTES, change["edits"]).removesuffix("\n")
    assert out["after"] == expected != out["before"]
    assert out["after"].endswith("\n\nNotes\ncall mom"), "only the paragraph is rewritten"
    assert [e["outcome"] for e in out["fix_log"]] == ["edit"]
    assert result["stray_processes"] == []
