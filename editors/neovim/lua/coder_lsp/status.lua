--- The engine's state per client, from `coderLsp/status`, `$/progress` and `window/showMessage`.
---
--- The server loads its model in the background: it reports progress on the token
--- "coder-lsp/engine" (title "coder-lsp: loading <profile>", then percentages, then "ready" or
--- "failed: <reason>") and sends `coderLsp/status` { state, reason, model, profile } on each
--- change. Each change fires `User CoderLspStatus` (data: the state) and redraws status lines.

local config = require('coder_lsp.config')
local util = require('coder_lsp.util')

local M = {}

M.ENGINE_TOKEN = 'coder-lsp/engine'

---@class coder_lsp.Progress
---@field token string|integer
---@field title? string
---@field message? string
---@field percentage? integer
---@field done boolean

---@class coder_lsp.EngineState
---@field client_id integer
---@field state? 'starting'|'ready'|'failed'|'stopped'
---@field reason? string
---@field model? string
---@field profile? string
---@field progress? coder_lsp.Progress The engine's loading progress (latest).
---@field percentages integer[] Every percentage the engine's progress reported, in order.
---@field tasks table<string|integer, coder_lsp.Progress> Other work in progress (indexing, fixes).
---@field failure_notified? string The reason last shown with vim.notify.

---@type table<integer, coder_lsp.EngineState>
local states = {}

---@param client_id integer
---@return coder_lsp.EngineState
local function entry(client_id)
  local s = states[client_id]
  if not s then
    s = { client_id = client_id, percentages = {}, tasks = {} }
    states[client_id] = s
  end
  return s
end

---@param s coder_lsp.EngineState
local function changed(s)
  vim.api.nvim_exec_autocmds('User', {
    pattern = 'CoderLspStatus',
    modeline = false,
    data = vim.deepcopy(s),
  })
  pcall(vim.cmd.redrawstatus, { bang = true })
end

--- Handler of the `coderLsp/status` notification.
---@param params? {state?: string, reason?: string, model?: string, profile?: string}
---@param ctx lsp.HandlerContext
function M.on_status(_, params, ctx)
  if type(params) ~= 'table' then
    return
  end
  local s = entry(ctx.client_id)
  local previous = s.state
  ---@param v any
  ---@return string?
  local function text(v)
    return type(v) == 'string' and v ~= '' and v or nil
  end
  s.state = params.state
  s.reason = text(params.reason)
  s.model = text(params.model)
  s.profile = text(params.profile) or s.profile
  if s.state ~= 'failed' then
    s.failure_notified = nil
  end
  if config.options.notify then
    if s.state == 'failed' then
      s.failure_notified = s.reason
      local what = previous == 'ready' and 'the %s engine failed: %s'
        or 'the %s engine failed to load: %s'
      vim.notify(
        ('coder-lsp: ' .. what):format(s.profile or '', s.reason or 'unknown reason'),
        vim.log.levels.ERROR
      )
    elseif s.state == 'ready' and previous == 'failed' then
      vim.notify('coder-lsp: engine ready (' .. (s.profile or '') .. ')', vim.log.levels.INFO)
    end
  end
  changed(s)
end

--- Handler of `window/showMessage`: Neovim's own, except for the server's message about an
--- engine failure that `on_status` has already reported with the same reason.
---@param err? lsp.ResponseError
---@param params lsp.ShowMessageParams
---@param ctx lsp.HandlerContext
---@param cfg? table
function M.on_show_message(err, params, ctx, cfg)
  local s = states[ctx.client_id]
  if
    s
    and s.failure_notified
    and type(params) == 'table'
    and (
      params.type == vim.lsp.protocol.MessageType.Error
      or params.type == vim.lsp.protocol.MessageType.Warning
    )
    and type(params.message) == 'string'
    and params.message:find(s.failure_notified, 1, true)
  then
    return params
  end
  return vim.lsp.handlers['window/showMessage'](err, params, ctx, cfg)
end

--- LspProgress callback (registered by plugin/coder_lsp.lua and setup()).
---@param ev {data?: {client_id: integer, params: lsp.ProgressParams}}
function M.on_progress(ev)
  local data = ev.data
  if not data or not data.params then
    return
  end
  local client = vim.lsp.get_client_by_id(data.client_id)
  if not util.is_ours(client) then
    return
  end
  local token, value = data.params.token, data.params.value
  if type(value) ~= 'table' then
    return
  end
  local s = entry(data.client_id)
  -- The first load's token, or a restart's (`coder-lsp/engine/<n>`).
  local engine = token == M.ENGINE_TOKEN or vim.startswith(tostring(token), M.ENGINE_TOKEN .. '/')
  local p = engine and s.progress or s.tasks[token]
  if value.kind == 'begin' or p == nil then
    p = { token = token, done = false }
  end
  p.title = value.title or p.title
  p.message = value.message or p.message
  if type(value.percentage) == 'number' then
    p.percentage = value.percentage
  end
  p.done = value.kind == 'end'
  if engine then
    s.progress = p
    if type(value.percentage) == 'number' then
      table.insert(s.percentages, value.percentage)
    end
  elseif p.done then
    s.tasks[token] = nil
  else
    s.tasks[token] = p
  end
  changed(s)
end

--- Forget a client that exited.
---@param client_id integer
function M.forget(client_id)
  local s = states[client_id]
  if s then
    s.state = 'stopped'
    changed(s)
  end
  states[client_id] = nil
end

--- The state of `client_id`'s engine (a copy), or nil before the server said anything.
---@param client_id integer
---@return coder_lsp.EngineState?
function M.get(client_id)
  return states[client_id] and vim.deepcopy(states[client_id]) or nil
end

--- The engine state of the coder_lsp client of `bufnr` (default: current buffer), or of any
--- running coder_lsp client.
---@param bufnr? integer
---@return coder_lsp.EngineState?, vim.lsp.Client?
function M.current(bufnr)
  local client = util.client(bufnr) or vim.lsp.get_clients({ name = config.name })[1]
  if not client then
    return nil, nil
  end
  return M.get(client.id), client
end

--- Whether the engine of `client_id` is known to have failed or stopped.
---@param client_id integer
---@return boolean
function M.unavailable(client_id)
  local s = states[client_id]
  return s ~= nil and (s.state == 'failed' or s.state == 'stopped')
end

--- A short text for status lines: '' without a client, else "coder-lsp: loading 40%",
--- "coder-lsp: ready", "coder-lsp: failed", ...
---@param bufnr? integer
---@return string
function M.statusline(bufnr)
  local client = util.client(bufnr)
  if not client then
    return ''
  end
  local s = states[client.id]
  if not s or not s.state then
    return 'coder-lsp: starting'
  end
  if s.state == 'starting' then
    local p = s.progress
    if p and not p.done and p.percentage then
      return ('coder-lsp: loading %d%%'):format(p.percentage)
    end
    return 'coder-lsp: loading'
  end
  if s.state == 'ready' then
    for _, task in pairs(s.tasks) do
      return 'coder-lsp: ' .. (task.title or 'working'):gsub('^coder%-lsp: ', '')
    end
  end
  return 'coder-lsp: ' .. s.state
end

--- Lines describing the engine of the client of `bufnr`, then `done(lines)` once the server has
--- answered `coderLsp/engineStats` (or failed to).
---@param bufnr? integer
---@param done fun(lines: string[])
function M.describe(bufnr, done)
  local s, client = M.current(bufnr)
  if not client then
    done({ 'coder-lsp: no coder_lsp client is running' })
    return
  end
  s = s or { percentages = {}, tasks = {} }
  local lines = {
    ('coder-lsp: client %d, root %s'):format(client.id, client.root_dir or '(none)'),
    '  state: ' .. (s.state or 'unknown'),
    '  profile: ' .. (s.profile or '?'),
    '  model: ' .. (s.model or '?'),
  }
  if s.reason and s.reason ~= '' then
    table.insert(lines, '  reason: ' .. s.reason)
  end
  local p = s.progress
  if p then
    table.insert(
      lines,
      ('  progress: %s%s%s'):format(
        p.percentage and (p.percentage .. '% ') or '',
        p.message or '',
        p.done and ' (done)' or ''
      )
    )
  end
  for _, task in pairs(s.tasks) do
    table.insert(lines, '  working: ' .. (task.title or tostring(task.token)))
  end
  local ok = client:request('coderLsp/engineStats', vim.NIL, function(err, result)
    if err then
      table.insert(lines, '  engine stats: error: ' .. (err.message or vim.inspect(err)))
    else
      local inspected = vim.inspect(result, { newline = ' ', indent = '' })
      table.insert(lines, '  engine stats: ' .. inspected)
    end
    done(lines)
  end)
  if not ok then
    table.insert(lines, '  engine stats: the client has shut down')
    done(lines)
  end
end

--- :CoderLspStatus
function M.command()
  M.describe(0, function(lines)
    local chunks = {}
    for i, line in ipairs(lines) do
      chunks[#chunks + 1] = { line .. (i < #lines and '\n' or '') }
    end
    vim.api.nvim_echo(chunks, true, {})
  end)
end

return M
