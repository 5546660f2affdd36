"""The Neovim plugin (`editors/neovim`) in headless Neovim 0.11.

Three sessions: one against an in-process fake server (no engine; exact texts, so the ghost
text's rendering, partial accepts, Tab's fallback, cancellation, the fix's diagnostics and the
status display are checked to the character), one against the real server with `tiny-moe`
(attach with the default setup, progress before ready, `:checkhealth`, `:CoderLspStatus`, ghost
text typed in Insert mode, accept, dismiss, "Fix with AI" through the keymap), and one whose
engine fails to load (the reason reaches the notification, the status line and the health
report). Keys are typed in Insert mode through `plugin_helpers.lua`'s `P.insert_session`.

tiny-moe's text is random: the real session's document is plain text (`filetype=text`, added to
the filetypes) with post-processing off, so the raw text is shown, and fixes end early on extra
stop sequences (as in test_nvim_fix.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.editors.nvim import apply_edits, run_nvim

HELPERS = "local P = dofile(T.repo_root .. '/tests/editors/lua/plugin_helpers.lua')\n"

FAKE_SCRIPT = (
    HELPERS
    + r"""
local globals_before = vim.deepcopy(vim.tbl_keys(_G))
local dir = P.load_plugin()
local api = vim.api
T.out.lsp_file = dofile(dir .. '/lsp/coder_lsp.lua')
T.out.lsp_file.handlers = vim.tbl_keys(T.out.lsp_file.handlers)

local ITEM = ' big world\nsecond\tline'
local fake = P.fake_server({
  inline = function(params)
    local range = { start = params.position, ['end'] = params.position }
    if params.context.triggerKind == 1 then
      return { items = { { insertText = ' first', range = range },
                         { insertText = ' other one', range = range } } }
    end
    return { items = { { insertText = ITEM, range = range } } }
  end,
  code_actions = function(params)
    local uri = params.textDocument.uri
    local line = params.range.start.line
    return {
      { title = 'Organize imports', kind = 'source.organizeImports' },
      { title = 'Some quickfix', kind = 'quickfix' },
      { title = 'Fix with AI: unknown word', kind = 'quickfix.coderLsp',
        edit = { changes = { [uri] = { {
          range = { start = { line = line, character = 5 },
                    ['end'] = { line = line, character = 9 } },
          newText = 'eggs' } } } } },
    }
  end,
})

-- Tab did something before the plugin: it keeps doing it when no suggestion is shown.
vim.keymap.set('i', '<Tab>', '[tab]')

local plugin = require('coder_lsp')
local opts = { server = { cmd = fake.cmd, filetypes = { 'text' } }, accept_with_tab = true }
plugin.setup(opts)
plugin.setup(opts)
vim.fn.writefile({ 'hello', 'café egss' }, 'a.txt')
vim.cmd.edit('a.txt')
local bufnr = api.nvim_get_current_buf()
T.must_wait(5000, function() return T.client(bufnr) ~= nil end, 'the fake client to attach')
plugin.setup(opts) -- once more, attached: the same keymaps and autocmds, not twice

local function ours(maps)
  return #vim.tbl_filter(function(m)
    return type(m.desc) == 'string' and vim.startswith(m.desc, 'coder-lsp:')
  end, maps)
end
local resolved = vim.lsp.config.coder_lsp
T.out.setup = {
  group_autocmds = #api.nvim_get_autocmds({ group = 'coder_lsp' }),
  buffer_autocmds = #api.nvim_get_autocmds({ group = 'coder_lsp.ghost_text.' .. bufnr }),
  insert_maps = ours(api.nvim_buf_get_keymap(bufnr, 'i')),
  normal_maps = ours(api.nvim_buf_get_keymap(bufnr, 'n')),
  visual_maps = ours(api.nvim_buf_get_keymap(bufnr, 'x')),
  options = plugin.options(),
  filetypes = resolved.filetypes,
  root_markers = resolved.root_markers,
  completion_provider = T.client(bufnr).server_capabilities.completionProvider ~= nil,
}
T.out.setup.options.server = nil -- holds a function

local ghost = require('coder_lsp.ghost')
local function shown() return P.virtual_text(bufnr, ghost.ns) end
local function inline() return fake.of('textDocument/inlineCompletion') end

api.nvim_win_set_cursor(0, { 1, 0 })
P.insert_session('A', function()
  P.must_wait(3000, function() return #shown() == 1 end, 'ghost text after InsertEnter')
  T.out.first = shown()[1]
  T.out.first_trigger = inline()[1].params.context.triggerKind
  T.out.first_suggestion = plugin.suggestion()
  -- Typing the suggestion's own text keeps the rest, without asking again.
  local asked = #inline()
  P.type(' b')
  T.out.typed_through = shown()
  P.sleep(200)
  T.out.asked_while_typing_through = #inline() - asked
  P.type('<M-w>')
  T.out.after_word = { text = T.buf_text(), shown = shown() }
  P.type('<M-j>')
  T.out.after_line = { text = T.buf_text(), shown = shown() }
  P.type('<M-j>')
  T.out.after_second_line = { text = T.buf_text(), cursor = api.nvim_win_get_cursor(0) }
  -- The next suggestion comes by itself; dismiss it.
  P.must_wait(3000, function() return #shown() == 1 end, 'the next suggestion')
  P.type('<C-]>')
  T.out.after_dismiss = shown()
  P.sleep(300)
  T.out.after_dismiss_later = shown()
  -- Nothing shown: Tab does what it did before.
  P.type('<Tab>')
  T.out.tab_fallback = T.buf_text()
  P.must_wait(3000, function() return #shown() == 1 end, 'a suggestion after the Tab')
  P.type('<Tab>')
  T.out.tab_accept = T.buf_text()
  -- Invoked: the ranked candidates, cycled, the second accepted.
  P.must_wait(3000, function() return #shown() == 1 end, 'a suggestion after the accept')
  P.type('<M-\\>')
  P.must_wait(3000, function()
    local last = inline()[#inline()]
    return last.params.context.triggerKind == 1 and #shown() == 1 and shown()[1].text == ' first'
  end, 'the invoked candidates')
  P.type('<M-]>')
  T.out.cycled = shown()
  P.type('<M-l>')
  T.out.accepted_second = T.buf_text()
  -- Moving the cursor hides the suggestion.
  P.must_wait(3000, function() return #shown() == 1 end, 'a suggestion before moving')
  P.type('<Left>')
  T.out.after_move = shown()
  -- An outdated request is cancelled: a keystroke comes while the first answer is slow.
  fake.delay = 400
  local n = #inline()
  P.type('x')
  P.must_wait(2000, function() return #inline() == n + 1 end, 'the slow request')
  P.type('y')
  P.must_wait(2000, function() return #inline() == n + 2 end, 'the next request')
  P.must_wait(2000, function() return #shown() == 1 end, 'the next answer')
  T.out.cancel = {
    slow = fake.cancelled[inline()[n + 1].id] == true,
    last = fake.cancelled[inline()[n + 2].id] == true,
    late = fake.late_cancels,
  }
  fake.delay = 0
end)
T.out.after_esc = shown()

-- Fix: a spell checker's diagnostic (its own namespace, past a two-byte character) reaches
-- the server in UTF-16 columns, and only coder-lsp's fix is applied.
T.capture_edits()
local ns = api.nvim_create_namespace('spell-test')
local row = api.nvim_buf_line_count(0) - 1
api.nvim_buf_set_lines(0, row, row + 1, false, { 'café egss' })
vim.diagnostic.set(ns, 0, { { lnum = row, col = 6, end_lnum = row, end_col = 10,
  message = 'unknown word: egss', severity = vim.diagnostic.severity.WARN, source = 'spell' } })
api.nvim_win_set_cursor(0, { row + 1, 0 })
local titles = {}
local fix = require('coder_lsp.fix')
local is_fix = fix.is_fix
fix.is_fix = function(a) table.insert(titles, a.title); return is_fix(a) end
api.nvim_feedkeys(vim.keycode('<leader>af'), 'mx', false)
T.must_wait(3000, function() return #T.edits > 0 end, 'the fix to be applied')
fix.is_fix = is_fix
local actions = fake.of('textDocument/codeAction')
T.out.fix = { titles = titles, context = actions[#actions].params.context,
              line = api.nvim_buf_get_lines(0, row, row + 1, false)[1] }

-- Engine status: loading progress, a failure (notified once), ready again.
fake.server_request('window/workDoneProgress/create', { token = 'coder-lsp/engine' })
local function progress(value)
  fake.send('$/progress', { token = 'coder-lsp/engine', value = value })
end
local function state(s, reason)
  fake.send('coderLsp/status',
            { state = s, reason = reason, model = 'fake-model', profile = 'fake' })
end
progress({ kind = 'begin', title = 'coder-lsp: loading fake', percentage = 0 })
state('starting', 'loading')
progress({ kind = 'report', message = 'weights', percentage = 40 })
T.out.loading = plugin.statusline()
progress({ kind = 'end', message = 'failed: boom' })
state('failed', 'boom')
fake.send('window/showMessage',
          { type = 1, message = 'coder-lsp: the fake engine failed to load: boom' })
fake.send('window/showMessage', { type = 1, message = 'another error' })
T.out.failed = { statusline = plugin.statusline(), status = plugin.status() }
vim.cmd('checkhealth coder_lsp')
T.out.health_failed = T.buf_text()
vim.cmd('tabclose')
state('ready', '')
T.out.ready = plugin.statusline()
vim.cmd('CoderLspStatus')
T.must_wait(3000, function()
  return vim.fn.execute('messages'):find('engine stats', 1, true) ~= nil
end, ':CoderLspStatus output')
T.out.new_globals = vim.tbl_filter(function(k)
  return not vim.tbl_contains(globals_before, k)
end, vim.tbl_keys(_G))
"""
)


def test_plugin_against_a_fake_server(tmp_path: Path) -> None:
    result = run_nvim(FAKE_SCRIPT, workspace=tmp_path, timeout=90)
    out = result["out"]

    lsp_file = out["lsp_file"]
    assert lsp_file["cmd"] == ["coder-lsp", "serve", "--stdio"]
    assert set(lsp_file["filetypes"]) == {
        "python", "javascript", "javascriptreact", "typescript", "typescriptreact",
        "java", "c", "cpp", "go", "rust",
    }  # fmt: skip
    assert ".git" in lsp_file["root_markers"]
    assert set(lsp_file["handlers"]) == {"coderLsp/status", "window/showMessage"}

    setup = out["setup"]
    assert setup["group_autocmds"] == 3  # ColorScheme, LspAttach, LspDetach: not doubled
    assert setup["buffer_autocmds"] == 6
    assert setup["insert_maps"] == 8  # 7 keys + Tab (accept_with_tab)
    assert setup["normal_maps"] == 1 and setup["visual_maps"] == 1
    assert setup["options"]["keymaps"]["accept"] == "<M-l>"
    assert setup["options"]["ghost_text"]["debounce_ms"] == 75
    assert setup["options"]["accept_with_tab"] is True
    assert setup["filetypes"] == ["text"]
    assert setup["root_markers"] == lsp_file["root_markers"]  # merged over the lsp/ file
    assert setup["completion_provider"] is False  # ghost text only, not the completion menu

    # Multi-line ghost text: the first line inline at the cursor, the rest as virtual lines.
    assert out["first"] == {"row": 0, "col": 5, "text": " big world\nsecond  line",
                            "pos": "inline"}  # fmt: skip
    assert out["first_trigger"] == 2
    assert out["first_suggestion"]["item"]["text"] == " big world\nsecond\tline"
    assert out["first_suggestion"]["item"]["range"] == [0, 5, 0, 5]
    assert [m["text"] for m in out["typed_through"]] == ["ig world\nsecond  line"]
    assert out["typed_through"][0]["col"] == 7
    assert out["asked_while_typing_through"] == 0
    assert out["after_word"]["text"].startswith("hello big\n")
    assert [m["text"] for m in out["after_word"]["shown"]] == [" world\nsecond  line"]
    assert out["after_line"]["text"].startswith("hello big world\n")
    assert [m["text"] for m in out["after_line"]["shown"]] == ["\nsecond  line"]
    assert out["after_second_line"]["text"].startswith("hello big world\nsecond\tline\n")
    assert out["after_second_line"]["cursor"] == [2, 11]
    assert out["after_dismiss"] == [] and out["after_dismiss_later"] == []
    assert out["tab_fallback"].startswith("hello big world\nsecond\tline[tab]\n")
    assert out["tab_accept"].startswith(
        "hello big world\nsecond\tline[tab] big world\nsecond\tline\n"
    )
    assert [m["text"] for m in out["cycled"]] == [" other one"]
    assert out["accepted_second"].startswith(
        "hello big world\nsecond\tline[tab] big world\nsecond\tline other one\n"
    )
    assert out["after_move"] == [] and out["after_esc"] == []
    assert out["cancel"] == {"slow": True, "last": False, "late": 0}

    fix = out["fix"]
    assert fix["titles"] == ["Some quickfix", "Fix with AI: unknown word"]  # `only` quickfix
    (diagnostic,) = fix["context"]["diagnostics"]
    assert diagnostic["message"] == "unknown word: egss" and diagnostic["source"] == "spell"
    assert diagnostic["range"]["start"]["character"] == 5  # byte 6 after "é", in UTF-16
    assert diagnostic["range"]["end"]["character"] == 9
    assert fix["line"] == "café eggs"
    [applied] = result["edits"]
    assert applied["ok"]

    assert out["loading"] == "coder-lsp: loading 40%"
    failed = out["failed"]
    assert failed["statusline"] == "coder-lsp: failed"
    assert failed["status"]["state"] == "failed" and failed["status"]["reason"] == "boom"
    assert failed["status"]["percentages"] == [0, 40]
    assert "ERROR engine failed: boom" in out["health_failed"]
    assert out["ready"] == "coder-lsp: ready"
    errors = [n["msg"] for n in result["notifications"] if n["level"] == 4]
    assert errors == [
        "coder-lsp: the fake engine failed to load: boom",  # once: not the server's copy too
        "LSP[coder_lsp] another error",
    ]
    assert "state: ready" in result["messages"] and 'profile = "fake"' in result["messages"]
    assert out["new_globals"] == []  # the plugin sets no Lua globals


READY_SCRIPT = (
    HELPERS
    + r"""
P.load_plugin()
P.record_status()
T.capture_edits()
local api = vim.api
local plugin = require('coder_lsp')
-- The default setup, with the test's server command, the plain-text filetype and settings
-- that show tiny-moe's raw text and end its fixes early.
plugin.setup({
  server = {
    cmd = T.server_cmd,
    filetypes = { 'text' },
    detached = false, -- in Neovim's process group, for the harness to reap
    init_options = {
      completion = { postprocess = false, maxTokens = 8 },
      fixes = { stop = { 'e', 'a', 'o', 'i' }, maxTokens = 64 },
      workspace = { index = false },
    },
  },
})
vim.cmd.edit('notes.txt')
local bufnr = api.nvim_get_current_buf()
T.must_wait(60000, function()
  local c = T.client(bufnr)
  return c ~= nil and c.initialized
end, 'the coder_lsp client to attach')
local client = T.client(bufnr)
T.out.statusline_early = plugin.statusline()
T.must_wait(200000, function()
  local s = plugin.status(bufnr)
  return s ~= nil and (s.state == 'ready' or s.state == 'failed')
end, 'the engine to be ready')
T.out.status = plugin.status(bufnr)
T.out.statusline = plugin.statusline()

vim.cmd('checkhealth coder_lsp')
T.out.health = T.buf_text()
vim.cmd('tabclose')
vim.cmd('CoderLspStatus')
T.must_wait(10000, function()
  return vim.fn.execute('messages'):find('engine stats', 1, true) ~= nil
end, ':CoderLspStatus output')

local ghost = require('coder_lsp.ghost')
local function shown() return P.virtual_text(bufnr, ghost.ns) end
api.nvim_win_set_cursor(0, { api.nvim_buf_line_count(0), 0 })
P.insert_session('A', function()
  -- InsertEnter asks; should the raw text be empty, a keystroke asks again.
  for _ = 1, 4 do
    if P.poll(15000, function() return #shown() == 1 end) then break end
    P.type('a')
  end
  P.must_wait(1000, function() return #shown() == 1 end, 'ghost text')
  T.out.before = T.buf_text()
  T.out.cursor = api.nvim_win_get_cursor(0)
  T.out.last_line = api.nvim_get_current_line()
  T.out.shown = shown()[1]
  T.out.suggestion = plugin.suggestion()
  T.out.completion_log = T.request(client, 'coderLsp/completionLog', vim.NIL)
  P.type('<M-l>')
  T.out.after_accept = T.buf_text()
  T.out.shown_after_accept = shown()
  -- The next suggestion (asked by itself after the accept, or explicitly), then dismissed.
  if not P.poll(20000, function() return #shown() == 1 end) then
    P.type('<M-\\>')
    P.must_wait(30000, function() return #shown() == 1 end, 'an invoked suggestion')
  end
  T.out.next_shown = shown()
  P.type('<C-]>')
  T.out.after_dismiss = shown()
  T.out.suggestion_after_dismiss = plugin.suggestion() or vim.NIL
end)

-- "Fix with AI" through the keymap, for a spell checker's diagnostic in its own namespace.
local ns = api.nvim_create_namespace('spell-test')
vim.diagnostic.set(ns, bufnr, { { lnum = 3, col = 0, end_lnum = 3, end_col = 4,
  message = 'unknown word: egss', severity = vim.diagnostic.severity.WARN, source = 'spell' } })
api.nvim_win_set_cursor(0, { 4, 0 })
local titles = {}
local fix = require('coder_lsp.fix')
local is_fix = fix.is_fix
fix.is_fix = function(action) table.insert(titles, action.title); return is_fix(action) end
T.out.before_fix = T.buf_text()
T.out.version_before_fix = vim.lsp.util.buf_versions[bufnr]
api.nvim_feedkeys(vim.keycode('<leader>af'), 'mx', false)
T.must_wait(120000, function() return #T.edits > 0 end, 'the fix to be applied')
fix.is_fix = is_fix
T.out.titles = titles
T.out.after_fix = T.buf_text()
T.out.fix_log = T.request(client, 'coderLsp/fixLog', vim.NIL)
"""
)

NOTES = "Shopping list\nmilk\nbread\negss\n\nNotes\ncall mom\n- "


def test_plugin_with_the_real_server(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(NOTES)

    result = run_nvim(READY_SCRIPT, workspace=tmp_path, timeout=300)

    out = result["out"]
    # Attached with the default setup; loading progress recorded before "ready".
    assert out["statusline_early"].startswith("coder-lsp: ")
    assert out["statusline_early"] != "coder-lsp: ready"
    status = out["status"]
    assert status["state"] == "ready" and status["profile"] == "tiny-moe"
    assert status["progress"]["title"] == "coder-lsp: loading tiny-moe"
    assert status["progress"]["message"] == "ready" and status["progress"]["done"] is True
    events = out["events"]
    ready_at = next(i for i, e in enumerate(events) if e["state"] == "ready")
    loading = [e["percentage"] for e in events[:ready_at] if e["percentage"] is not None]
    assert loading == sorted(loading) and loading[0] == 0 and loading[-1] == 100
    assert any(0 < p < 100 for p in loading), loading
    assert out["statusline"] == "coder-lsp: ready"

    # :checkhealth coder_lsp
    health = out["health"]
    assert "ERROR" not in health and "WARNING" not in health
    for line in (
        "OK Neovim 0.11",
        "OK require('coder_lsp').setup() has run",
        "found: ",
        "OK enabled for filetypes: text",
        "attached to buffer(s)",
        "OK the server offers inline completions",
        "OK engine ready: profile tiny-moe",
    ):
        assert line in health, line
    # :CoderLspStatus: state, profile, model, progress and the server's engineStats.
    messages = result["messages"]
    assert "state: ready" in messages and "profile: tiny-moe" in messages
    assert "progress: 100% ready" in messages and "unfinishedRequests = 0" in messages

    # Ghost text typed in Insert mode; accept inserts exactly the item's text.
    suggestion = out["suggestion"]
    text = suggestion["item"]["text"]
    assert text and suggestion["text"] == text
    assert same_but_spaces(out["shown"]["text"], text)  # tabs are shown as spaces
    row, col = out["cursor"]
    assert (row - 1, col) == (out["shown"]["row"], out["shown"]["col"])
    assert out["before"].endswith(out["last_line"]) and col == len(out["last_line"].encode())
    last = out["completion_log"][-1]
    assert last["items"][0] == text and last["source"] == "engine" and last["invoked"] is False
    assert out["after_accept"] == out["before"] + text
    assert out["shown_after_accept"] == []
    assert len(out["next_shown"]) == 1
    assert out["after_dismiss"] == [] and out["suggestion_after_dismiss"] is None

    # The fix: the other namespace's diagnostic reached the server, the edit applied.
    assert out["titles"] == ["Fix with AI: unknown word: egss"]
    (applied,) = result["edits"]
    assert applied["ok"], applied
    (change,) = applied["edit"]["documentChanges"]
    assert change["textDocument"]["version"] == out["version_before_fix"]
    assert out["after_fix"] == apply_edits(out["before_fix"], change["edits"]) != out["before_fix"]
    assert [e["outcome"] for e in out["fix_log"]] == ["edit"]
    assert result["stray_processes"] == []


FAILED_SCRIPT = (
    HELPERS
    + r"""
P.load_plugin()
P.record_status()
local plugin = require('coder_lsp')
plugin.setup({
  server = {
    cmd = T.server_cmd,
    filetypes = { 'text' },
    detached = false,
    init_options = { engine = { model = '/nonexistent/model' }, workspace = { index = false } },
  },
})
vim.cmd.edit('notes.txt')
local bufnr = vim.api.nvim_get_current_buf()
T.must_wait(120000, function()
  local s = plugin.status(bufnr)
  return s ~= nil and (s.state == 'ready' or s.state == 'failed')
end, 'the engine to fail')
T.out.status = plugin.status(bufnr)
T.out.statusline = plugin.statusline()
vim.cmd('checkhealth coder_lsp')
T.out.health = T.buf_text()
vim.cmd('tabclose')
"""
)


def test_a_failed_engine_is_reported_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(NOTES)

    result = run_nvim(FAILED_SCRIPT, workspace=tmp_path, timeout=200)

    out = result["out"]
    status = out["status"]
    assert status["state"] == "failed" and status["model"] == "/nonexistent/model"
    reason = status["reason"]
    assert "/nonexistent/model" in reason
    assert status["progress"]["message"] == f"failed: {reason}" and status["progress"]["done"]
    assert status["percentages"][0] == 0  # the load began, and ended at once
    assert out["statusline"] == "coder-lsp: failed"
    assert f"ERROR engine failed: {reason}" in out["health"]
    # One error notification with the reason: the server's own message is not repeated.
    errors = [n["msg"] for n in result["notifications"] if n["level"] == 4]
    assert errors == [f"coder-lsp: the tiny-moe engine failed to load: {reason}"]
    assert result["stray_processes"] == []


def same_but_spaces(shown: str, text: str) -> bool:
    return re.sub(r"[ \t]+", " ", shown) == re.sub(r"[ \t]+", " ", text)


GHOST_COLOUR_SCRIPT = (
    HELPERS
    + r"""
local api = vim.api
P.load_plugin()
local function ghost()
  return api.nvim_get_hl(0, { name = 'CoderLspGhostText', link = false })
end
vim.o.termguicolors = false
require('coder_lsp').setup({ filetypes = { 'text' } })
T.out.cterm = ghost()
T.out.cterm_link = api.nvim_get_hl(0, { name = 'CoderLspGhostText' }).link or vim.NIL
T.out.normal = api.nvim_get_hl(0, { name = 'Normal', link = false })
vim.o.termguicolors = true
vim.cmd.colorscheme('default')  -- the ColorScheme autocommand sets the default again
T.out.gui_link = api.nvim_get_hl(0, { name = 'CoderLspGhostText' }).link or vim.NIL
"""
)


def test_ghost_text_is_never_the_normal_colour(tmp_path: Path) -> None:
    """Without truecolor the default colorscheme's Comment has no terminal colour: the ghost
    text gets grey rather than the normal text colour; with it, it follows Comment."""
    out = run_nvim(GHOST_COLOUR_SCRIPT, workspace=tmp_path, timeout=60)["out"]
    assert out["cterm"].get("ctermfg") is not None, out
    assert out["cterm"].get("ctermfg") != out["normal"].get("ctermfg")
    assert out["gui_link"] == "Comment", out
