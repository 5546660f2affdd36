--- Small helpers shared by the coder_lsp modules.

local config = require('coder_lsp.config')

local M = {}

--- The coder_lsp client attached to `bufnr` (0 or nil: the current buffer).
---@param bufnr? integer
---@return vim.lsp.Client?
function M.client(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  return vim.lsp.get_clients({ bufnr = bufnr, name = config.name })[1]
end

--- Whether `client` is a coder_lsp client.
---@param client? vim.lsp.Client
---@return boolean
function M.is_ours(client)
  return client ~= nil and client.name == config.name
end

--- Line `row` (0-based) of `bufnr`, or '' past the end.
---@param bufnr integer
---@param row integer
---@return string
function M.line(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

--- A byte column of `line` as a character index in `encoding` ('utf-8', 'utf-16', 'utf-32').
---@param line string
---@param col integer
---@param encoding? string
---@return integer
function M.char_index(line, col, encoding)
  col = math.max(0, math.min(col, #line))
  if encoding == nil or encoding == 'utf-8' then
    return col
  end
  local ok, index = pcall(vim.str_utfindex, line, encoding, col, false)
  return ok and index or col
end

--- A character index in `encoding` as a byte column of `line`.
---@param line string
---@param index integer
---@param encoding? string
---@return integer
function M.byte_index(line, index, encoding)
  if encoding == nil or encoding == 'utf-8' then
    return math.max(0, math.min(index, #line))
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, index, false)
  return ok and math.min(col, #line) or #line
end

--- Whether Neovim is in Insert mode (completion submodes included).
---@return boolean
function M.in_insert()
  return vim.api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

return M
