-- Test harness loaded before every script run by tests/editors/nvim.py.
--
-- Defines the global `T`, then (once Neovim has finished starting) runs the test script in
-- xpcall and writes the results as JSON to $CODER_LSP_TEST_OUT. Whatever happens (a Lua
-- error, a timeout, a normal end), language servers are stopped and Neovim quits.

local uv = vim.uv or vim.loop

---@diagnostic disable-next-line: lowercase-global
T = {
  out = {}, -- the test's own results
  failures = {}, -- failed waits and checks, in order
  logs = {}, -- progress notes (T.log)
  notifications = {}, -- every vim.notify call: {msg, level}
  status = {}, -- every coderLsp/status notification: params + client_id
  edits = {}, -- workspace edits applied while T.capture_edits() is on
  exits = {}, -- client_id -> {code, signal}
  workspace = uv.cwd(),
  repo_root = vim.env.CODER_LSP_TEST_REPO_ROOT,
  server_cmd = vim.json.decode(vim.env.CODER_LSP_TEST_SERVER_CMD or '[]'),
  name = 'coder_lsp',
}

local started = uv.hrtime()
local finished = false

--- Milliseconds since the harness started.
function T.elapsed_ms()
  return math.floor((uv.hrtime() - started) / 1e6)
end

--- A progress note, kept in the result (useful when a test fails half way).
function T.log(msg)
  table.insert(T.logs, string.format('[%6d ms] %s', T.elapsed_ms(), msg))
end

--- Record a failure without stopping the script.
function T.fail(msg)
  table.insert(T.failures, msg)
  T.log('FAIL: ' .. msg)
end

--- Record a failure unless `ok`; returns `ok`.
function T.check(ok, msg)
  if not ok then
    T.fail(msg)
  end
  return ok
end

--- vim.wait(ms, cond) that records a failure naming `what` when it times out.
--- Returns true when `cond` became true.
function T.wait(ms, cond, what)
  local ok = vim.wait(ms, cond, 20)
  if not ok then
    T.fail(string.format('timed out after %d ms waiting for %s', ms, what or 'a condition'))
  end
  return ok
end

--- Like T.wait but raises (ending the script) on a timeout.
function T.must_wait(ms, cond, what)
  if not T.wait(ms, cond, what) then
    error(string.format('timed out after %d ms waiting for %s', ms, what or 'a condition'), 2)
  end
end

-- Record notifications (window/showMessage, "No code actions available", ...).
local notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(T.notifications, { msg = tostring(msg), level = level })
  return notify(msg, level, opts)
end

--- The coder_lsp client attached to `bufnr` (default: current buffer), or any coder_lsp client.
function T.client(bufnr)
  local clients = vim.lsp.get_clients({ name = T.name, bufnr = bufnr })
  if #clients == 0 and bufnr == nil then
    clients = vim.lsp.get_clients({ name = T.name })
  end
  return clients[1]
end

--- The last coderLsp/status params received (from `client_id`, or from any client).
function T.last_status(client_id)
  for i = #T.status, 1, -1 do
    if client_id == nil or T.status[i].client_id == client_id then
      return T.status[i]
    end
  end
  return nil
end

--- Start coder-lsp with Neovim 0.11's vim.lsp.config + vim.lsp.enable and wait until the client
--- is attached to the buffer and initialized. Returns the client.
---
--- opts (all optional):
---   file          path to :edit (relative to the workspace); default: the current buffer
---   filetypes     default {'python'}
---   root_dir      default: the workspace (cwd); root_markers are used when root_dir = false
---   root_markers  default {'pyproject.toml', 'setup.py', '.git'}
---   init_options  initializationOptions
---   settings      answered to workspace/configuration
---   handlers      extra client handlers
---   cmd           default: the server command given by the harness (CODER_LSP_TEST_SERVER_CMD)
---   timeout_ms    how long to wait for the client to attach and initialize (default 60000)
function T.start_server(opts)
  opts = opts or {}
  local handlers = vim.tbl_extend('force', {
    ['coderLsp/status'] = function(_, params, ctx)
      local entry = vim.deepcopy(params or {})
      entry.client_id = ctx.client_id
      entry.at_ms = T.elapsed_ms()
      table.insert(T.status, entry)
      T.log('coderLsp/status ' .. tostring(entry.state) .. ' ' .. tostring(entry.reason))
    end,
  }, opts.handlers or {})
  local root_dir = opts.root_dir
  if root_dir == nil then
    root_dir = T.workspace
  elseif root_dir == false then
    root_dir = nil
  end
  local cmd = opts.cmd or T.server_cmd
  assert(#cmd > 0, 'no server command (CODER_LSP_TEST_SERVER_CMD is empty)')
  vim.lsp.config(T.name, {
    cmd = cmd,
    filetypes = opts.filetypes or { 'python' },
    root_dir = root_dir,
    root_markers = opts.root_markers or { 'pyproject.toml', 'setup.py', '.git' },
    init_options = opts.init_options,
    settings = opts.settings,
    handlers = handlers,
    -- Keep the server in Neovim's process group so the Python side can reap it if need be.
    detached = false,
    on_exit = function(code, signal, client_id)
      T.exits[client_id] = { code = code, signal = signal }
      T.log(string.format('client %d exited: code %s signal %s', client_id, code, signal))
    end,
  })
  vim.lsp.enable(T.name)
  if opts.file then
    vim.cmd.edit(vim.fn.fnameescape(opts.file))
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  T.must_wait(opts.timeout_ms or 60000, function()
    client = T.client(bufnr)
    return client ~= nil and client.initialized == true
  end, 'the coder_lsp client to attach to buffer ' .. bufnr .. ' and initialize')
  T.log('client ' .. client.id .. ' initialized')
  return client
end

--- Wait for coderLsp/status "ready"; raises when the engine failed or the wait timed out.
function T.wait_ready(timeout_ms, client)
  local id = client and client.id or nil
  local function state()
    local s = T.last_status(id)
    return s and s.state
  end
  T.wait(timeout_ms or 200000, function()
    local s = state()
    return s == 'ready' or s == 'failed' or s == 'stopped'
  end, 'coderLsp/status "ready"')
  local last = T.last_status(id)
  if state() ~= 'ready' then
    error('engine not ready; last coderLsp/status: ' .. vim.inspect(last), 2)
  end
  return last
end

--- A synchronous request; returns the result or raises with the error.
function T.request(client, method, params, timeout_ms, bufnr)
  local response, err = client:request_sync(method, params, timeout_ms or 30000, bufnr or 0)
  if not response then
    error(string.format('%s: %s', method, tostring(err)), 2)
  end
  if response.err then
    error(string.format('%s: %s', method, vim.inspect(response.err)), 2)
  end
  return response.result
end

--- Record every workspace edit Neovim applies (code actions, workspace/applyEdit, rename):
--- the edit, the buffer versions before it, whether it raised, and the affected buffers'
--- text afterwards. Entries go to T.edits.
function T.capture_edits()
  local util = vim.lsp.util
  if util._coder_lsp_original_apply then
    return
  end
  local original = util.apply_workspace_edit
  util._coder_lsp_original_apply = original
  util.apply_workspace_edit = function(workspace_edit, position_encoding)
    local uris = {}
    for _, change in ipairs(workspace_edit.documentChanges or {}) do
      local uri = change.textDocument and change.textDocument.uri or change.uri or change.newUri
      if uri then
        uris[uri] = true
      end
    end
    for uri in pairs(workspace_edit.changes or {}) do
      uris[uri] = true
    end
    local versions = {}
    for uri in pairs(uris) do
      local bufnr = vim.uri_to_bufnr(uri)
      versions[uri] = util.buf_versions[bufnr]
    end
    local entry = {
      edit = vim.deepcopy(workspace_edit),
      position_encoding = position_encoding,
      versions_before = versions,
      at_ms = T.elapsed_ms(),
    }
    table.insert(T.edits, entry)
    local ok, err = pcall(original, workspace_edit, position_encoding)
    entry.ok = ok
    entry.error = not ok and tostring(err) or nil
    entry.text_after = {}
    for uri in pairs(uris) do
      local bufnr = vim.uri_to_bufnr(uri)
      if vim.api.nvim_buf_is_loaded(bufnr) then
        entry.text_after[uri] =
          table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
      end
    end
    if not ok then
      error(err, 0)
    end
  end
end

--- The current buffer's text.
function T.buf_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), '\n')
end

--- Stop every LSP client and wait for their processes to exit (SIGTERM after `timeout_ms`).
function T.stop_clients(timeout_ms)
  timeout_ms = timeout_ms or 60000
  local report = {}
  for _, client in ipairs(vim.lsp.get_clients({ _uninitialized = true })) do
    local id = client.id
    local t0 = T.elapsed_ms()
    client:stop()
    local gone = function()
      return vim.lsp.get_client_by_id(id) == nil
    end
    local graceful = vim.wait(timeout_ms, gone, 20)
    if not graceful then
      T.fail(string.format('client %s (%d) did not exit within %d ms', client.name, id, timeout_ms))
      client:stop(true)
      vim.wait(10000, gone, 20)
    end
    report[#report + 1] = {
      id = id,
      name = client.name,
      graceful = graceful,
      exited = gone(),
      exit = T.exits[id],
      stop_ms = T.elapsed_ms() - t0,
    }
  end
  return report
end

local function write_result(result)
  local path = assert(vim.env.CODER_LSP_TEST_OUT, 'CODER_LSP_TEST_OUT is not set')
  local ok, encoded = pcall(vim.json.encode, result)
  if not ok then
    result.out = { unencodable = vim.inspect(result.out) }
    result.edits = { unencodable = vim.inspect(result.edits) }
    result.failures[#result.failures + 1] = 'results could not be encoded as JSON: ' .. encoded
    encoded = vim.json.encode(result)
  end
  local tmp = path .. '.tmp'
  local file = assert(io.open(tmp, 'w'))
  file:write(encoded)
  file:close()
  assert(os.rename(tmp, path))
end

--- Stop the servers, write the results and quit Neovim. Never returns.
function T.done(err)
  if finished then
    return
  end
  finished = true
  local result = {
    out = T.out,
    error = err,
    failures = T.failures,
    logs = T.logs,
    notifications = T.notifications,
    status = T.status,
    edits = T.edits,
    version = tostring(vim.version()),
  }
  local ok, stopped = pcall(T.stop_clients)
  result.clients = ok and stopped or { error = tostring(stopped) }
  result.messages = vim.fn.execute('messages')
  result.elapsed_ms = T.elapsed_ms()
  write_result(result)
  vim.cmd('qa!')
end

-- Ends a script that outlives its time, with its partial results.
local budget = tonumber(vim.env.CODER_LSP_TEST_TIMEOUT_MS or '')
if budget then
  vim.defer_fn(function()
    T.done(string.format('harness timeout: the script ran for more than %d ms', budget))
  end, budget)
end

vim.schedule(function()
  local script = assert(vim.env.CODER_LSP_TEST_SCRIPT, 'CODER_LSP_TEST_SCRIPT is not set')
  local chunk, load_err = loadfile(script)
  if not chunk then
    T.done('could not load the script: ' .. tostring(load_err))
    return
  end
  local ok, err = xpcall(chunk, debug.traceback)
  T.done(not ok and tostring(err) or nil)
end)
