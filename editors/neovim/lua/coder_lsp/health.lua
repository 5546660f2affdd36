--- :checkhealth coder_lsp

local config = require('coder_lsp.config')

local M = {}

local function check_neovim()
  local h = vim.health
  h.start('coder_lsp: Neovim')
  local version = tostring(vim.version())
  if vim.fn.has('nvim-0.11') == 1 then
    h.ok('Neovim ' .. version .. ' (0.11 or newer)')
  else
    h.error('Neovim ' .. version .. ' is too old', { 'coder_lsp needs Neovim 0.11 or newer' })
  end
  if config.native() then
    h.ok('ghost text: Neovim\'s vim.lsp.inline_completion')
  else
    h.ok('ghost text: the plugin\'s own (extmarks in namespace coder_lsp.ghost_text)')
  end
  if config.configured then
    h.ok("require('coder_lsp').setup() has run")
  else
    h.info("require('coder_lsp').setup() has not run: no ghost text or keymaps")
  end
end

---@return vim.lsp.Config?
local function lsp_config()
  local ok, cfg = pcall(function()
    return vim.lsp.config[config.name]
  end)
  return ok and cfg or nil
end

local function check_server()
  local h = vim.health
  h.start('coder_lsp: server')
  local cfg = lsp_config()
  if not cfg then
    h.error('no vim.lsp config named ' .. config.name, {
      'put editors/neovim of coder-lsp on the runtimepath (it holds lsp/coder_lsp.lua)',
    })
    return
  end
  local cmd = cfg.cmd
  if type(cmd) == 'function' then
    h.info('cmd is a function: not checked')
  elseif type(cmd) == 'table' and type(cmd[1]) == 'string' then
    local path = vim.fn.exepath(cmd[1])
    if path ~= '' then
      h.ok(('`%s` found: %s'):format(cmd[1], path))
    else
      h.error(('`%s` not found (cmd = %s)'):format(cmd[1], vim.inspect(cmd)), {
        "pip install 'coder-lsp[cpu]' (or 'coder-lsp[gpu]' on a CUDA machine)",
        "or set the command: require('coder_lsp').setup({ server = { cmd = {...} } })",
        'then `coder-lsp doctor` tells what the server is missing',
      })
    end
  else
    h.error('cmd is not set in the coder_lsp config')
  end
  if vim.lsp.is_enabled and vim.lsp.is_enabled(config.name) then
    h.ok('enabled for filetypes: ' .. table.concat(cfg.filetypes or {}, ', '))
  else
    h.warn('not enabled', { "require('coder_lsp').setup() or vim.lsp.enable('coder_lsp')" })
  end
end

local function check_clients()
  local h = vim.health
  h.start('coder_lsp: client and engine')
  local clients = vim.lsp.get_clients({ name = config.name })
  if #clients == 0 then
    h.warn('no coder_lsp client is running', {
      'open a file of one of the configured filetypes (see above)',
    })
    return
  end
  local status = require('coder_lsp.status')
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_keys(client.attached_buffers)
    table.sort(buffers)
    local where = ('client %d (root %s)'):format(client.id, client.root_dir or 'none')
    if #buffers > 0 then
      h.ok(('%s attached to buffer(s) %s'):format(where, table.concat(buffers, ', ')))
    else
      h.warn(where .. ' is attached to no buffer')
    end
    local caps = client.server_capabilities or {}
    if caps.inlineCompletionProvider then
      h.ok('the server offers inline completions')
    else
      h.warn('the server does not offer inline completions (not coder-lsp?)')
    end
    local s = status.get(client.id)
    local state = s and s.state
    if state == 'ready' then
      h.ok(('engine ready: profile %s, model %s'):format(s.profile or '?', s.model or '?'))
    elseif state == 'starting' or state == nil then
      local p = s and s.progress
      h.info(
        ('engine loading%s%s'):format(
          p and p.percentage and (' ' .. p.percentage .. '%') or '',
          p and p.message and (': ' .. p.message) or ''
        )
      )
    elseif state == 'failed' then
      h.error('engine failed: ' .. (s.reason or 'unknown reason'), {
        'run `coder-lsp doctor` (and `coder-lsp models --prepare <profile>`)',
        ':CoderLspStatus shows the profile and model',
      })
    else
      h.warn('engine ' .. tostring(state))
    end
  end
end

function M.check()
  check_neovim()
  check_server()
  check_clients()
end

return M
