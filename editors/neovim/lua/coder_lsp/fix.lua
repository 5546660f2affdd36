--- "Fix with AI": coder-lsp's quick fixes for the problems on the cursor line or the selection.
---
--- Neovim 0.11's `vim.lsp.buf.code_action` sends a server only that client's own diagnostics,
--- so the problems other linters and servers report would never reach the fix. This passes
--- every namespace's diagnostics on those lines (as LSP diagnostics, with positions in the
--- client's encoding) and keeps only coder-lsp's fixes in the list.

local config = require('coder_lsp.config')
local util = require('coder_lsp.util')

local api = vim.api

local M = {}

M.KIND = 'quickfix.coderLsp'
M.TITLE = 'Fix with AI'

--- Whether `action` is one of coder-lsp's fixes.
---@param action lsp.CodeAction|lsp.Command
---@return boolean
function M.is_fix(action)
  return action.kind == M.KIND
    or (type(action.kind) == 'string' and vim.startswith(action.kind, M.KIND .. '.'))
    or (type(action.title) == 'string' and vim.startswith(action.title, M.TITLE))
end

--- The diagnostics of every namespace on rows `first`..`last` (0-based, inclusive) of
--- `bufnr`, as LSP diagnostics with character positions in `encoding`.
---@param bufnr integer
---@param first integer
---@param last integer
---@param encoding string
---@return lsp.Diagnostic[]
function M.diagnostics(bufnr, first, last, encoding)
  ---@type vim.Diagnostic[]
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    local end_lnum = d.end_lnum or d.lnum
    if d.lnum <= last and end_lnum >= first then
      found[#found + 1] = d
    end
  end
  table.sort(found, function(a, b)
    if a.lnum ~= b.lnum then
      return a.lnum < b.lnum
    end
    return (a.col or 0) < (b.col or 0)
  end)
  local converted = vim.lsp.diagnostic.from(found)
  for i, d in ipairs(found) do
    -- from() keeps an LSP diagnostic's own range (in its server's encoding) and leaves byte
    -- columns otherwise: recompute both from Neovim's byte positions.
    local lsp_diag = vim.deepcopy(converted[i])
    local end_lnum = d.end_lnum or d.lnum
    local end_col = d.end_col or d.col or 0
    lsp_diag.range = {
      start = {
        line = d.lnum,
        character = util.char_index(util.line(bufnr, d.lnum), d.col or 0, encoding),
      },
      ['end'] = {
        line = end_lnum,
        character = util.char_index(util.line(bufnr, end_lnum), end_col, encoding),
      },
    }
    converted[i] = lsp_diag
  end
  return converted
end

--- Rows (0-based, inclusive) of the visual selection, or nil outside Visual mode.
---@return integer?, integer?
local function selected_rows()
  local mode = api.nvim_get_mode().mode
  if mode ~= 'v' and mode ~= 'V' and mode ~= '\22' then
    return nil, nil
  end
  local a, b = vim.fn.line('v') - 1, vim.fn.line('.') - 1
  return math.min(a, b), math.max(a, b)
end

---@class coder_lsp.FixCallOpts
---@field apply? boolean Apply at once when there is exactly one fix (default: setup's fix.apply).

--- List coder-lsp's fixes for the cursor line's problems (every source) or the selection, and
--- apply the one chosen (at once when it is the only one and `apply`).
---@param opts? coder_lsp.FixCallOpts
function M.fix(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local client = util.client(bufnr)
  if not client then
    vim.notify('coder-lsp: no coder_lsp client is attached to this buffer', vim.log.levels.WARN)
    return
  end
  local first, last = selected_rows()
  if not first then
    first = api.nvim_win_get_cursor(0)[1] - 1
    last = first
  end
  ---@cast last integer
  local apply = opts.apply
  if apply == nil then
    apply = config.options.fix.apply
  end
  vim.lsp.buf.code_action({
    context = {
      only = { 'quickfix' },
      diagnostics = M.diagnostics(bufnr, first, last, client.offset_encoding),
      triggerKind = vim.lsp.protocol.CodeActionTriggerKind.Invoked,
    },
    filter = M.is_fix,
    apply = apply,
  })
end

return M
