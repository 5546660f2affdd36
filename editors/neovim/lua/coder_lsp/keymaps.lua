--- Buffer-local keymaps of the coder_lsp plugin, set when the client attaches.
---
--- Insert-mode keys act only while a suggestion is shown; otherwise they do what they did
--- before: the buffer's earlier mapping of that key, else the global one, else the key itself.
--- Tab is taken only with `accept_with_tab = true`, and falls back the same way.

local config = require('coder_lsp.config')

local api = vim.api

local M = {}

local DESC = 'coder-lsp: '

---@class coder_lsp.Fallback
---@field map? table The mapping (nvim_get_keymap form) the key had before, buffer-local.

---@type table<integer, {mode: string, lhs: string}[]>
local installed = {}

---@param keys string
---@return string
local function termcodes(keys)
  return api.nvim_replace_termcodes(keys, true, true, true)
end

--- The mapping of `lhs` in `mode` among `maps`, not one of ours.
---@param maps table[]
---@param lhs string
---@return table?
local function find(maps, lhs)
  local raw = termcodes(lhs)
  local trans = vim.fn.keytrans(raw)
  for _, m in ipairs(maps) do
    if
      (m.lhsraw == raw or m.lhsrawalt == raw or m.lhs == lhs or m.lhs == trans)
      and not (type(m.desc) == 'string' and vim.startswith(m.desc, DESC))
    then
      return m
    end
  end
  return nil
end

---@param keys string
---@param remap boolean
local function feed(keys, remap)
  if keys ~= '' then
    api.nvim_feedkeys(keys, remap and 'im' or 'in', false)
  end
end

--- Do what `lhs` did before coder_lsp mapped it: `map` (the buffer's earlier mapping), else
--- the global mapping, else the key itself.
---@param mode string
---@param lhs string
---@param map? table
function M.fallback(mode, lhs, map)
  map = map or find(api.nvim_get_keymap(mode), lhs)
  if not map then
    feed(termcodes(lhs), false)
    return
  end
  local remap = map.noremap ~= 1
  if map.callback then
    if map.expr == 1 then
      local keys = map.callback()
      if type(keys) == 'string' then
        feed(map.replace_keycodes == 1 and termcodes(keys) or keys, remap)
      end
    else
      map.callback()
    end
    return
  end
  local rhs = map.rhs or ''
  if map.expr == 1 then
    if map.sid and map.sid > 0 then
      rhs = rhs:gsub('<[Ss][Ii][Dd]>', ('<SNR>%d_'):format(map.sid))
    end
    local ok, keys = pcall(api.nvim_eval, rhs)
    feed(ok and type(keys) == 'string' and keys or '', remap)
  else
    feed(termcodes(rhs), remap)
  end
end

--- Map `lhs` in Insert mode: `action()` returns false when it did nothing, then the key does
--- what it did before.
---@param bufnr integer
---@param lhs string
---@param action fun(): boolean
---@param desc string
local function insert_map(bufnr, lhs, action, desc)
  local previous = find(api.nvim_buf_get_keymap(bufnr, 'i'), lhs)
  vim.keymap.set('i', lhs, function()
    if not action() then
      M.fallback('i', lhs, previous)
    end
  end, { buffer = bufnr, silent = true, desc = DESC .. desc })
  table.insert(installed[bufnr], { mode = 'i', lhs = lhs })
end

--- Set the plugin's keymaps in `bufnr` (replacing the ones it set before).
---@param bufnr integer
function M.attach(bufnr)
  M.detach(bufnr)
  installed[bufnr] = {}
  local keys = config.options.keymaps
  local ghost = require('coder_lsp.ghost')
  local native = config.native()
  local ic = vim.lsp.inline_completion

  if config.options.ghost_text.enabled then
    ---@type table<string, fun(): boolean>
    local actions
    if native then
      actions = {
        accept = function()
          local ok, accepted = pcall(ic.get, { bufnr = bufnr })
          return ok and accepted ~= false
        end,
        next = function()
          return type(ic.select) == 'function' and pcall(ic.select, { count = 1 }) or false
        end,
        prev = function()
          return type(ic.select) == 'function' and pcall(ic.select, { count = -1 }) or false
        end,
      }
    else
      actions = {
        accept = ghost.accept,
        accept_word = ghost.accept_word,
        accept_line = ghost.accept_line,
        dismiss = function()
          return ghost.dismiss(bufnr)
        end,
        invoke = function()
          ghost.invoke()
          return true
        end,
        next = function()
          return ghost.cycle(1)
        end,
        prev = function()
          return ghost.cycle(-1)
        end,
      }
    end
    local descs = {
      accept = 'accept the suggestion',
      accept_word = 'accept the next word of the suggestion',
      accept_line = 'accept the next line of the suggestion',
      dismiss = 'dismiss the suggestion',
      invoke = 'ask for a suggestion',
      next = 'next suggestion',
      prev = 'previous suggestion',
    }
    for name, action in pairs(actions) do
      local lhs = keys[name]
      if lhs then
        insert_map(bufnr, lhs, action, descs[name])
      end
    end
    if config.options.accept_with_tab and actions.accept then
      insert_map(bufnr, '<Tab>', function()
        return vim.fn.pumvisible() == 0 and actions.accept()
      end, 'accept the suggestion (Tab)')
    end
  end

  if keys.fix then
    vim.keymap.set({ 'n', 'x' }, keys.fix, function()
      require('coder_lsp.fix').fix()
    end, { buffer = bufnr, silent = true, desc = DESC .. 'Fix with AI' })
    table.insert(installed[bufnr], { mode = 'n', lhs = keys.fix })
    table.insert(installed[bufnr], { mode = 'x', lhs = keys.fix })
  end
end

--- Remove the keymaps the plugin set in `bufnr`.
---@param bufnr integer
function M.detach(bufnr)
  for _, km in ipairs(installed[bufnr] or {}) do
    if api.nvim_buf_is_valid(bufnr) then
      pcall(vim.keymap.del, km.mode, km.lhs, { buffer = bufnr })
    end
  end
  installed[bufnr] = nil
end

--- The keymaps the plugin set in `bufnr` ({mode, lhs} pairs).
---@param bufnr integer
---@return {mode: string, lhs: string}[]
function M.list(bufnr)
  return vim.deepcopy(installed[bufnr] or {})
end

return M
