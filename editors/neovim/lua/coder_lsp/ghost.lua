--- Ghost text: `textDocument/inlineCompletion` shown as extmarks at the cursor.
---
--- Neovim 0.11 has no inline completion client, so the plugin asks itself: on InsertEnter and
--- after each change in Insert mode (debounced), or explicitly (`invoke`). A newer request
--- cancels the one before it (`$/cancelRequest`); an answer for an older cursor or text is
--- dropped. The first line of a suggestion is virtual text at the cursor (inline), the others
--- virtual lines below it. Typing the suggestion's own characters keeps the rest shown; any
--- other change, moving the cursor or leaving Insert mode hides it.

local config = require('coder_lsp.config')
local status = require('coder_lsp.status')
local util = require('coder_lsp.util')

local api = vim.api
local uv = vim.uv or vim.loop

local M = {}

M.ns = api.nvim_create_namespace('coder_lsp.ghost_text')

local METHOD = 'textDocument/inlineCompletion'
M.INVOKED = 1
M.AUTOMATIC = 2

---@class coder_lsp.Item
---@field text string The item's insertText.
---@field range [integer, integer, integer, integer] Start row, start col, end row, end col: 0-based rows, byte columns.
---@field replace string Buffer text between the cursor and the range's end, replaced on accept.
---@field command? lsp.Command

---@class coder_lsp.Suggestion
---@field client_id integer
---@field items coder_lsp.Item[]
---@field index integer The item shown.
---@field row integer Where the rest is shown (the cursor): 0-based row ...
---@field col integer ... and byte column.
---@field text string What is left of the item to insert at (row, col).
---@field tick integer b:changedtick when (row, col) and `text` were last in step with the buffer.
---@field extmark? integer

---@class coder_lsp.BufState
---@field timer? uv.uv_timer_t
---@field pending? {client_id: integer, id: integer}
---@field seq integer Requests made; an answer to an older one is dropped.
---@field suggestion? coder_lsp.Suggestion
---@field auto boolean Automatic requests in this buffer.

---@type table<integer, coder_lsp.BufState>
local buffers = {}

---@param bufnr integer
---@return coder_lsp.BufState
local function buf_state(bufnr)
  local st = buffers[bufnr]
  if not st then
    st = { seq = 0, auto = true }
    buffers[bufnr] = st
  end
  return st
end

---@param bufnr integer
---@return integer
local function tick(bufnr)
  return api.nvim_buf_get_changedtick(bufnr)
end

---@return integer row 0-based, integer col byte
local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

--- Tabs as the spaces they will take once inserted from display column `start` (virtual text
--- would show them as ^I).
---@param bufnr integer
---@param text string
---@param start integer
---@return string
local function expand_tabs(bufnr, text, start)
  if not text:find('\t', 1, true) then
    return text
  end
  local ts = vim.bo[bufnr].tabstop
  ts = ts > 0 and ts or 8
  local parts = {}
  local col = start
  for segment, tab in text:gmatch('([^\t]*)(\t?)') do
    parts[#parts + 1] = segment
    col = col + vim.fn.strdisplaywidth(segment)
    if tab ~= '' then
      local n = ts - col % ts
      parts[#parts + 1] = string.rep(' ', n)
      col = col + n
    end
  end
  return table.concat(parts)
end

---@param bufnr integer
local function clear_marks(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

---@param bufnr integer
---@param s coder_lsp.Suggestion
local function render(bufnr, s)
  clear_marks(bufnr)
  s.extmark = nil
  if s.text == '' then
    return
  end
  local hl = config.options.ghost_text.hl_group
  local lines = vim.split(s.text, '\n', { plain = true })
  local before = api.nvim_buf_get_text(bufnr, s.row, 0, s.row, s.col, {})[1] or ''
  local opts = {
    virt_text = { { expand_tabs(bufnr, lines[1], vim.fn.strdisplaywidth(before)), hl } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
    priority = 1000,
    right_gravity = false,
  }
  if #lines > 1 then
    local virt_lines = {}
    for i = 2, #lines do
      virt_lines[#virt_lines + 1] = { { expand_tabs(bufnr, lines[i], 0), hl } }
    end
    opts.virt_lines = virt_lines
  end
  local ok, id = pcall(api.nvim_buf_set_extmark, bufnr, M.ns, s.row, s.col, opts)
  s.extmark = ok and id or nil
end

--- Stop the debounce timer and cancel the request in flight.
---@param bufnr integer
function M.cancel(bufnr)
  local st = buffers[bufnr]
  if not st then
    return
  end
  if st.timer then
    st.timer:stop()
  end
  local pending = st.pending
  st.pending = nil
  st.seq = st.seq + 1
  if pending then
    local client = vim.lsp.get_client_by_id(pending.client_id)
    if client then
      pcall(client.cancel_request, client, pending.id)
    end
  end
end

--- Hide the suggestion of `bufnr` (default: current buffer). Returns whether one was shown.
---@param bufnr? integer
---@return boolean
function M.clear(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = buffers[bufnr]
  local shown = st ~= nil and st.suggestion ~= nil
  if st then
    st.suggestion = nil
  end
  clear_marks(bufnr)
  return shown
end

--- Hide the suggestion and cancel what is pending; nothing new until the next change.
---@param bufnr? integer
---@return boolean shown whether a suggestion was shown
function M.dismiss(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  M.cancel(bufnr)
  return M.clear(bufnr)
end

--- Whether a suggestion is shown in `bufnr` (default: current buffer).
---@param bufnr? integer
---@return boolean
function M.visible(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = buffers[bufnr]
  return st ~= nil and st.suggestion ~= nil and st.suggestion.text ~= ''
end

--- The suggestion shown in `bufnr` (a copy): `text` is what is left to insert at the cursor,
--- `item` the server's item (insertText and its range, converted to 0-based rows and bytes).
---@param bufnr? integer
---@return {text: string, row: integer, col: integer, index: integer, count: integer, item: coder_lsp.Item, extmark?: integer}?
function M.get(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = buffers[bufnr]
  local s = st and st.suggestion
  if not s then
    return nil
  end
  return vim.deepcopy({
    text = s.text,
    row = s.row,
    col = s.col,
    index = s.index,
    count = #s.items,
    item = s.items[s.index],
    extmark = s.extmark,
  })
end

--- Text of a snippet string without its placeholders' syntax.
---@param value string
---@return string
local function snippet_text(value)
  local ok, grammar = pcall(require, 'vim.lsp._snippet_grammar')
  if ok then
    local parsed_ok, parsed = pcall(grammar.parse, value)
    if parsed_ok then
      return tostring(parsed)
    end
  end
  return value
end

--- The server's item, if it can be shown at the cursor (row, col) of `bufnr`.
---@param bufnr integer
---@param raw lsp.InlineCompletionItem
---@param encoding string
---@param row integer
---@param col integer
---@return coder_lsp.Item?, string? rest what remains to show at the cursor
local function to_item(bufnr, raw, encoding, row, col)
  local text = raw.insertText
  if type(text) == 'table' then
    text = snippet_text(text.value or '')
  end
  if type(text) ~= 'string' then
    return nil
  end
  local range = { row, col, row, col }
  if type(raw.range) == 'table' then
    local s, e = raw.range.start, raw.range['end']
    range = {
      s.line,
      util.byte_index(util.line(bufnr, s.line), s.character, encoding),
      e.line,
      util.byte_index(util.line(bufnr, e.line), e.character, encoding),
    }
  end
  -- The range must hold the cursor: before it, what is typed; after it, what is replaced.
  local before = range[1] < row or (range[1] == row and range[2] <= col)
  local after = range[3] > row or (range[3] == row and range[4] >= col)
  if not (before and after) then
    return nil
  end
  local typed = table.concat(api.nvim_buf_get_text(bufnr, range[1], range[2], row, col, {}), '\n')
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  local replace = table.concat(api.nvim_buf_get_text(bufnr, row, col, range[3], range[4], {}), '\n')
  return { text = text, range = range, replace = replace, command = raw.command },
    text:sub(#typed + 1)
end

--- Show the answer to a request made at (row, col), tick `at_tick`.
---@param bufnr integer
---@param client vim.lsp.Client
---@param result lsp.InlineCompletionList|lsp.InlineCompletionItem[]|nil
---@param row integer
---@param col integer
---@param at_tick integer
local function on_result(bufnr, client, result, row, col, at_tick)
  local st = buf_state(bufnr)
  local raw_items = type(result) == 'table' and (result.items or result) or {}
  ---@type coder_lsp.Item[]
  local items = {}
  local first_rest
  for _, raw in ipairs(raw_items) do
    local item, rest = to_item(bufnr, raw, client.offset_encoding, row, col)
    if item and rest and rest ~= '' then
      items[#items + 1] = item
      first_rest = first_rest or rest
    end
  end
  if #items == 0 then
    M.clear(bufnr)
    return
  end
  st.suggestion = {
    client_id = client.id,
    items = items,
    index = 1,
    row = row,
    col = col,
    text = first_rest,
    tick = at_tick,
  }
  render(bufnr, st.suggestion)
end

--- Ask the coder_lsp client of the current buffer for an inline completion at the cursor.
---@param trigger? integer 1 = Invoked, 2 = Automatic (default)
function M.request(trigger)
  trigger = trigger or M.AUTOMATIC
  local bufnr = api.nvim_get_current_buf()
  local client = util.client(bufnr)
  if not client then
    return
  end
  if trigger == M.AUTOMATIC and status.unavailable(client.id) then
    return
  end
  M.cancel(bufnr)
  local st = buf_state(bufnr)
  local seq = st.seq
  local row, col = cursor()
  local at_tick = tick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  ---@cast params lsp.InlineCompletionParams
  params.context = { triggerKind = trigger }
  local request_id ---@type integer?
  local answered = false
  local ok, id = client:request(METHOD, params, function(err, result)
    answered = true
    if st.pending and st.pending.id == request_id then
      st.pending = nil
    end
    if err or seq ~= st.seq or not api.nvim_buf_is_valid(bufnr) then
      return
    end
    -- Only for the cursor and text it was asked for, while still typing there.
    if api.nvim_get_current_buf() ~= bufnr or not util.in_insert() or tick(bufnr) ~= at_tick then
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col then
      return
    end
    on_result(bufnr, client, result, row, col, at_tick)
  end, bufnr)
  request_id = id
  if ok and id and not answered then
    st.pending = { client_id = client.id, id = id }
  end
end

--- Request after the debounce delay (automatic trigger).
---@param bufnr integer
local function schedule_request(bufnr)
  local st = buf_state(bufnr)
  if not st.auto or not config.options.ghost_text.auto_trigger then
    return
  end
  M.cancel(bufnr)
  local delay = math.max(0, config.options.ghost_text.debounce_ms)
  if not st.timer then
    st.timer = assert(uv.new_timer())
  end
  st.timer:start(
    delay,
    0,
    vim.schedule_wrap(function()
      if
        buffers[bufnr] == st
        and api.nvim_buf_is_valid(bufnr)
        and api.nvim_get_current_buf() == bufnr
        and util.in_insert()
      then
        M.request(M.AUTOMATIC)
      end
    end)
  )
end

--- TextChangedI/TextChangedP: typing the suggestion's own text keeps the rest shown; any other
--- change hides it and asks again.
---@param bufnr integer
function M.on_text_changed(bufnr)
  local st = buf_state(bufnr)
  local s = st.suggestion
  local now = tick(bufnr)
  if s and s.tick == now then
    return -- the plugin's own edit (a partial accept)
  end
  if s then
    local row, col = cursor()
    if row > s.row or (row == s.row and col > s.col) then
      local typed = table.concat(api.nvim_buf_get_text(bufnr, s.row, s.col, row, col, {}), '\n')
      if typed ~= '' and s.text:sub(1, #typed) == typed and #typed < #s.text then
        s.text = s.text:sub(#typed + 1)
        s.row, s.col, s.tick = row, col, now
        render(bufnr, s)
        M.cancel(bufnr)
        return
      end
    end
    M.clear(bufnr)
  end
  schedule_request(bufnr)
end

--- CursorMovedI: moving away from the suggestion hides it.
---@param bufnr integer
function M.on_cursor_moved(bufnr)
  local st = buffers[bufnr]
  local s = st and st.suggestion
  if not s or s.tick ~= tick(bufnr) then
    return -- a change: on_text_changed decides
  end
  local row, col = cursor()
  if row ~= s.row or col ~= s.col then
    M.clear(bufnr)
  end
end

--- InsertEnter.
---@param bufnr integer
function M.on_insert_enter(bufnr)
  schedule_request(bufnr)
end

--- InsertLeave, BufLeave.
---@param bufnr integer
function M.on_leave(bufnr)
  M.dismiss(bufnr)
end

--- Insert `text` at (row, col) replacing up to (end_row, end_col); cursor after it.
---@param bufnr integer
local function insert(bufnr, row, col, end_row, end_col, text)
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_text(bufnr, row, col, end_row, end_col, lines)
  local last_row = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row + 1, last_col })
end

--- Insert the whole suggestion (replacing the item's range after the cursor).
--- Returns false when none is shown.
---@return boolean
function M.accept()
  local bufnr = api.nvim_get_current_buf()
  local st = buffers[bufnr]
  local s = st and st.suggestion
  if not s or s.text == '' then
    return false
  end
  local item = s.items[s.index]
  local text = s.text
  -- What the item replaces after the cursor.
  local end_row, end_col = s.row, s.col
  if item.replace ~= '' then
    local rep = vim.split(item.replace, '\n', { plain = true })
    end_row = s.row + #rep - 1
    end_col = (#rep == 1 and s.col or 0) + #rep[#rep]
  end
  M.dismiss(bufnr)
  insert(bufnr, s.row, s.col, end_row, end_col, text)
  if item.command then
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      client:exec_cmd(item.command, { bufnr = bufnr })
    end
  end
  return true
end

--- The next word of `text`: leading space, then a run of word characters or of other ones.
---@param text string
---@return string
local function next_word(text)
  local space = text:match('^[ \t]*') or ''
  local rest = text:sub(#space + 1)
  if rest == '' then
    return space
  end
  if rest:sub(1, 1) == '\n' then
    return space .. '\n' .. (rest:sub(2):match('^[ \t]*') or '')
  end
  local word = rest:match('^[%w_\128-\255]+') or rest:match('^[^%w_\128-\255%s]+') or rest:sub(1, 1)
  return space .. word
end

--- The rest of the suggestion's current line (with the line break before it, if it starts with one).
---@param text string
---@return string
local function next_line(text)
  if text:sub(1, 1) == '\n' then
    return '\n' .. (text:sub(2):match('^[^\n]*') or '')
  end
  return text:match('^[^\n]*') or text
end

---@param pick fun(text: string): string
---@return boolean
local function accept_part(pick)
  local bufnr = api.nvim_get_current_buf()
  local st = buffers[bufnr]
  local s = st and st.suggestion
  if not s or s.text == '' then
    return false
  end
  local part = pick(s.text)
  if part == '' or part == s.text then
    return M.accept()
  end
  M.cancel(bufnr)
  insert(bufnr, s.row, s.col, s.row, s.col, part)
  s.text = s.text:sub(#part + 1)
  s.row, s.col = cursor()
  s.tick = tick(bufnr)
  render(bufnr, s)
  return true
end

--- Insert the suggestion's next word; the rest stays shown. False when none is shown.
---@return boolean
function M.accept_word()
  return accept_part(next_word)
end

--- Insert the rest of the suggestion's current line; the rest stays shown.
---@return boolean
function M.accept_line()
  return accept_part(next_line)
end

--- Show the next (`step` 1) or previous (-1) candidate. False when none is shown.
---@param step integer
---@return boolean
function M.cycle(step)
  local bufnr = api.nvim_get_current_buf()
  local st = buffers[bufnr]
  local s = st and st.suggestion
  if not s then
    return false
  end
  if #s.items < 2 then
    return true
  end
  -- Candidates are shown from the cursor where they were asked for (nothing typed since).
  for offset = 1, #s.items - 1 do
    local index = (s.index - 1 + step * offset) % #s.items + 1
    local item = s.items[index]
    local row, col = cursor()
    local prefix =
      table.concat(api.nvim_buf_get_text(bufnr, item.range[1], item.range[2], row, col, {}), '\n')
    if item.text:sub(1, #prefix) == prefix and #prefix < #item.text then
      s.index, s.text, s.row, s.col = index, item.text:sub(#prefix + 1), row, col
      render(bufnr, s)
      return true
    end
  end
  return true
end

--- Ask explicitly (trigger kind Invoked: several candidates, ranked).
function M.invoke()
  M.request(M.INVOKED)
end

--- Turn automatic requests on or off in `bufnr` (default: current buffer); returns the new value.
---@param bufnr? integer
---@param enable? boolean default: toggle
---@return boolean
function M.set_auto(bufnr, enable)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = buf_state(bufnr)
  if enable == nil then
    enable = not st.auto
  end
  st.auto = enable
  if not enable then
    M.dismiss(bufnr)
  end
  return enable
end

local GROUP = 'coder_lsp.ghost_text'

--- Start ghost text in `bufnr` (idempotent).
---@param bufnr integer
function M.attach(bufnr)
  local group = api.nvim_create_augroup(GROUP .. '.' .. bufnr, { clear = true })
  buf_state(bufnr)
  api.nvim_create_autocmd('InsertEnter', {
    group = group,
    buffer = bufnr,
    desc = 'coder-lsp: ask for an inline completion',
    callback = function()
      M.on_insert_enter(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, {
    group = group,
    buffer = bufnr,
    desc = 'coder-lsp: follow or refresh the inline completion',
    callback = function()
      M.on_text_changed(bufnr)
    end,
  })
  api.nvim_create_autocmd('CursorMovedI', {
    group = group,
    buffer = bufnr,
    desc = 'coder-lsp: hide the inline completion when the cursor leaves it',
    callback = function()
      M.on_cursor_moved(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    desc = 'coder-lsp: hide the inline completion',
    callback = function()
      M.on_leave(bufnr)
    end,
  })
end

--- Stop ghost text in `bufnr`.
---@param bufnr integer
function M.detach(bufnr)
  M.dismiss(bufnr)
  pcall(api.nvim_del_augroup_by_name, GROUP .. '.' .. bufnr)
  local st = buffers[bufnr]
  if st and st.timer then
    st.timer:stop()
    if not st.timer:is_closing() then
      st.timer:close()
    end
  end
  buffers[bufnr] = nil
end

--- Whether ghost text is attached to `bufnr`.
---@param bufnr integer
---@return boolean
function M.attached(bufnr)
  return buffers[bufnr] ~= nil
end

return M
