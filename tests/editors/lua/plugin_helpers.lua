-- Helpers for tests of the Neovim plugin (editors/neovim), on top of harness.lua's `T`.
--
--   local P = dofile(T.repo_root .. '/tests/editors/lua/plugin_helpers.lua')
--
-- Typed keys are only read by Insert mode while Neovim waits for input, not while a Lua script
-- runs (vim.wait does not read them). `P.insert_session` therefore enters Insert mode with
-- feedkeys(..., 'x!') and runs the test's steps in a coroutine resumed from timers while Insert
-- mode waits: `P.type` sends keys (nvim_input) and `P.wait` polls without blocking input.

local P = {}

local api = vim.api

--- Put editors/neovim first on 'runtimepath' and source its plugin/ file.
function P.load_plugin()
  local dir = T.repo_root .. '/editors/neovim'
  vim.opt.runtimepath:prepend(dir)
  vim.cmd.runtime('plugin/coder_lsp.lua')
  return dir
end

--- Record each `User CoderLspStatus` event (the plugin's state after each change) in
--- `T.out.events`, and coderLsp/status states in `T.status` as the harness does.
function P.record_status()
  T.out.events = T.out.events or {}
  api.nvim_create_autocmd('User', {
    pattern = 'CoderLspStatus',
    callback = function(ev)
      local s = ev.data or {}
      local p = s.progress or {}
      table.insert(T.out.events, {
        at_ms = T.elapsed_ms(),
        state = s.state or vim.NIL,
        reason = s.reason or vim.NIL,
        percentage = p.percentage or vim.NIL,
        message = p.message or vim.NIL,
        done = p.done or false,
      })
      local last = T.status[#T.status]
      if s.state and (not last or last.state ~= s.state or last.reason ~= s.reason) then
        table.insert(T.status, {
          state = s.state,
          reason = s.reason,
          model = s.model,
          profile = s.profile,
          client_id = s.client_id,
          at_ms = T.elapsed_ms(),
        })
      end
    end,
  })
end

local current ---@type thread?
local resume ---@type fun()?

--- Resume the insert session's coroutine after `ms` and yield until then.
---@param ms integer
function P.sleep(ms)
  assert(current and coroutine.running() == current, 'P.sleep outside P.insert_session')
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

--- Poll `cond` every 20 ms without blocking Insert mode, for up to `ms`; returns whether it
--- became true (a timeout is not a failure).
---@param ms integer
---@param cond fun(): any
---@return boolean
function P.poll(ms, cond)
  local deadline = vim.uv.now() + ms
  while not cond() do
    if vim.uv.now() >= deadline then
      return false
    end
    P.sleep(20)
  end
  return true
end

--- Poll `cond` every 20 ms without blocking Insert mode; records a failure on a timeout.
---@param ms integer
---@param cond fun(): any
---@param what string
---@return boolean
function P.wait(ms, cond, what)
  if P.poll(ms, cond) then
    return true
  end
  T.fail(('timed out after %d ms waiting for %s'):format(ms, what))
  return false
end

--- Like P.wait, raising on a timeout.
function P.must_wait(ms, cond, what)
  if not P.wait(ms, cond, what) then
    error('timed out waiting for ' .. what, 2)
  end
end

--- Type `keys` (nvim_input notation) and let Insert mode read them: waits until the buffer's
--- changedtick or the cursor moved, or `settle_ms` (default 150) passed.
---@param keys string
---@param settle_ms? integer
function P.type(keys, settle_ms)
  local tick = api.nvim_buf_get_changedtick(0)
  local pos = api.nvim_win_get_cursor(0)
  api.nvim_input(keys)
  local deadline = vim.uv.now() + (settle_ms or 150)
  repeat
    P.sleep(10)
    local now_pos = api.nvim_win_get_cursor(0)
    local moved = now_pos[1] ~= pos[1] or now_pos[2] ~= pos[2]
  until api.nvim_buf_get_changedtick(0) ~= tick or moved or vim.uv.now() >= deadline
  P.sleep(30) -- the autocmds after the change
end

--- Enter Insert mode with `start_keys` (e.g. 'A') and run `steps` there (a coroutine: use
--- P.type, P.wait, P.sleep). Returns after the steps, in Normal mode; re-raises their error.
---@param start_keys string
---@param steps fun()
function P.insert_session(start_keys, steps)
  local co = coroutine.create(steps)
  local err ---@type string?
  local finished = false
  local function leave()
    finished = true
    current, resume = nil, nil
    api.nvim_feedkeys(vim.keycode('<Esc>'), 'n', false)
  end
  current = co
  resume = function()
    if finished then
      return
    end
    local ok, e = coroutine.resume(co)
    if not ok then
      err = debug.traceback(co, e)
      leave()
    elseif coroutine.status(co) == 'dead' then
      leave()
    end
  end
  vim.schedule(resume)
  api.nvim_feedkeys(vim.keycode(start_keys), 'ntx!', false)
  if err then
    error(err, 0)
  end
  if not finished then
    error('Insert mode ended before the steps finished', 0)
  end
end

--- The text an extmark of namespace `ns` in `bufnr` shows: its virt_text, then its virt_lines.
---@param bufnr integer
---@param ns integer
---@return {row: integer, col: integer, text: string, pos?: string}[]
function P.virtual_text(bufnr, ns)
  local out = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local d = mark[4]
    local lines = {}
    local first = {}
    for _, chunk in ipairs(d.virt_text or {}) do
      first[#first + 1] = chunk[1]
    end
    lines[1] = table.concat(first)
    for _, vline in ipairs(d.virt_lines or {}) do
      local parts = {}
      for _, chunk in ipairs(vline) do
        parts[#parts + 1] = chunk[1]
      end
      lines[#lines + 1] = table.concat(parts)
    end
    out[#out + 1] =
      { row = mark[2], col = mark[3], text = table.concat(lines, '\n'), pos = d.virt_text_pos }
  end
  return out
end

--- An in-process fake language server for `cmd` (Neovim accepts a function): it answers
--- initialize with coder-lsp's capabilities, inline completions with `opts.inline(params)`
--- after `opts.delay_ms`, code actions with `opts.code_actions(params)`, and records what it
--- got in the returned table (requests, notifications, cancelled ids, answered ids, and
--- late_cancels: cancellations of requests already answered). `fake.send(method, params)`
--- sends a notification to the client, `fake.server_request(method, params)` a request;
--- `fake.delay` (ms) delays the inline completion answers.
---@param opts {inline?: fun(params: table): table, delay_ms?: integer, code_actions?: fun(params: table): table}
function P.fake_server(opts)
  local fake = { requests = {}, notifications = {}, cancelled = {}, answered = {}, late_cancels = 0 }
  fake.cmd = function(dispatchers)
    local closing = false
    local next_id = 0
    fake.send = function(method, params)
      dispatchers.notification(method, params)
    end
    fake.server_request = function(method, params)
      return dispatchers.server_request(method, params)
    end
    return {
      request = function(method, params, callback, notify_reply_callback)
        next_id = next_id + 1
        local id = next_id
        table.insert(fake.requests, { id = id, method = method, params = params })
        local function reply(err, result)
          fake.answered[#fake.answered + 1] = id
          callback(err, result)
          if notify_reply_callback then
            notify_reply_callback(id)
          end
        end
        local delay = 0
        local answer
        if method == 'initialize' then
          answer = function()
            reply(nil, {
              capabilities = {
                positionEncoding = 'utf-16',
                textDocumentSync = { openClose = true, change = 2 },
                inlineCompletionProvider = {},
                completionProvider = {},
                codeActionProvider = { resolveProvider = false },
              },
              serverInfo = { name = 'fake coder-lsp' },
            })
          end
        elseif method == 'textDocument/inlineCompletion' then
          delay = fake.delay or opts.delay_ms or 0
          answer = function()
            if fake.cancelled[id] then
              reply({ code = -32800, message = 'cancelled' }, nil)
            else
              reply(nil, opts.inline and opts.inline(params) or { items = {} })
            end
          end
        elseif method == 'textDocument/codeAction' then
          answer = function()
            reply(nil, opts.code_actions and opts.code_actions(params) or {})
          end
        elseif method == 'coderLsp/engineStats' then
          answer = function()
            reply(nil, { state = 'ready', profile = 'fake', unfinishedRequests = 0 })
          end
        else
          answer = function()
            reply(nil, vim.NIL)
          end
        end
        vim.defer_fn(answer, delay)
        return true, id
      end,
      notify = function(method, params)
        table.insert(fake.notifications, { method = method, params = params })
        if method == '$/cancelRequest' then
          fake.cancelled[params.id] = true
          if vim.tbl_contains(fake.answered, params.id) then
            fake.late_cancels = fake.late_cancels + 1
          end
        elseif method == 'exit' then
          closing = true
          vim.schedule(function()
            dispatchers.on_exit(0, 0)
          end)
        end
        return true
      end,
      is_closing = function()
        return closing
      end,
      terminate = function()
        if not closing then
          closing = true
          vim.schedule(function()
            dispatchers.on_exit(0, 15)
          end)
        end
      end,
    }
  end
  --- Requests of `method` received so far.
  function fake.of(method)
    local found = {}
    for _, r in ipairs(fake.requests) do
      if r.method == method then
        found[#found + 1] = r
      end
    end
    return found
  end
  return fake
end

return P
