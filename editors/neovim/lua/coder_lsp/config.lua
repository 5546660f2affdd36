--- Options of the coder_lsp plugin: the defaults and the ones in force.

local M = {}

--- The name of the |vim.lsp.config| entry (and of the client).
M.name = 'coder_lsp'

---@class coder_lsp.GhostTextOpts
---@field enabled boolean Show inline completions as ghost text.
---@field auto_trigger boolean Ask on InsertEnter and after each change (else only on `invoke`).
---@field debounce_ms integer Wait this long after a keystroke before asking.
---@field native boolean Use Neovim's `vim.lsp.inline_completion` where this Neovim has it.
---@field hl_group string Highlight group of the ghost text.

---@class coder_lsp.KeymapOpts
---@field accept string|false Insert the whole suggestion (insert mode).
---@field accept_word string|false Insert its next word (insert mode).
---@field accept_line string|false Insert the rest of its current line (insert mode).
---@field dismiss string|false Hide it (insert mode).
---@field invoke string|false Ask explicitly: ranked candidates (insert mode).
---@field next string|false Show the next candidate (insert mode).
---@field prev string|false Show the previous candidate (insert mode).
---@field fix string|false "Fix with AI" on the line's problems or the selection (normal, visual).

---@class coder_lsp.FixOpts
---@field apply boolean Apply at once when there is exactly one fix (else choose with vim.ui.select).

---@class coder_lsp.Opts
---@field enable boolean Call `vim.lsp.enable('coder_lsp')`.
---@field server vim.lsp.Config Merged over `lsp/coder_lsp.lua` (cmd, filetypes, init_options, ...).
---@field ghost_text coder_lsp.GhostTextOpts
---@field keymaps coder_lsp.KeymapOpts
---@field accept_with_tab boolean Tab accepts a shown suggestion; otherwise Tab does what it did.
---@field completion_items boolean Also offer suggestions as completion-menu items.
---@field fix coder_lsp.FixOpts
---@field notify boolean vim.notify when the engine fails to load (and when it is ready again).

---@type coder_lsp.Opts
M.defaults = {
  enable = true,
  server = {},
  ghost_text = {
    enabled = true,
    auto_trigger = true,
    debounce_ms = 75,
    native = true,
    hl_group = 'CoderLspGhostText',
  },
  keymaps = {
    accept = '<M-l>',
    accept_word = '<M-w>',
    accept_line = '<M-j>',
    dismiss = '<C-]>',
    invoke = '<M-\\>',
    next = '<M-]>',
    prev = '<M-[>',
    fix = '<leader>af',
  },
  accept_with_tab = false,
  completion_items = false,
  fix = { apply = true },
  notify = true,
}

---@type coder_lsp.Opts
M.options = vim.deepcopy(M.defaults)

--- Whether setup() has run.
M.configured = false

---@alias coder_lsp.UserOpts table Any subset of coder_lsp.Opts.

--- The defaults with `opts` merged over them (setup's argument; nothing else is kept).
---@param opts? coder_lsp.UserOpts
---@return coder_lsp.Opts
function M.resolve(opts)
  vim.validate('opts', opts, 'table', true)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  vim.validate('server', merged.server, 'table')
  vim.validate('ghost_text', merged.ghost_text, 'table')
  vim.validate('keymaps', merged.keymaps, 'table')
  vim.validate('ghost_text.debounce_ms', merged.ghost_text.debounce_ms, 'number')
  for key, lhs in pairs(merged.keymaps) do
    if lhs ~= false and type(lhs) ~= 'string' then
      error(('coder_lsp: keymaps.%s must be a string or false, not %s'):format(key, vim.inspect(lhs)))
    end
  end
  return merged
end

--- Whether Neovim's own inline completion is the one in use.
---@return boolean
function M.native()
  local ic = vim.lsp.inline_completion
  return M.options.ghost_text.native == true
    and type(ic) == 'table'
    and type(ic.enable) == 'function'
    and type(ic.get) == 'function'
end

return M
