--- coder-lsp for Neovim 0.11+: ghost-text completions, "Fix with AI", engine status.
---
--- require('coder_lsp').setup()   -- idempotent; see :help coder_lsp

local config = require('coder_lsp.config')

local api = vim.api

local M = {}

local GROUP = 'coder_lsp'

--- Default highlight of the ghost text (kept when the colorscheme or the user sets it): like
--- Comment, but never the normal text colour. Without 'termguicolors' the default colorscheme
--- gives Comment no terminal colour, and ghost text would look typed: grey (colour 8) then.
local function highlights()
  local comment = api.nvim_get_hl(0, { name = 'Comment', link = false })
  if vim.o.termguicolors or comment.ctermfg ~= nil then
    api.nvim_set_hl(0, 'CoderLspGhostText', { link = 'Comment', default = true })
  else
    api.nvim_set_hl(0, 'CoderLspGhostText', {
      fg = comment.fg, ctermfg = 8, italic = comment.italic, default = true,
    })
  end
end

--- Start the plugin's features in `bufnr` for `client` (a coder_lsp client).
---@param client vim.lsp.Client
---@param bufnr integer
local function attach(client, bufnr)
  local opts = config.options
  if not opts.completion_items and client.server_capabilities then
    -- Suggestions are ghost text; do not offer them again in the completion menu.
    client.server_capabilities.completionProvider = nil
  end
  local ghost = require('coder_lsp.ghost')
  if opts.ghost_text.enabled and client.server_capabilities.inlineCompletionProvider then
    if config.native() then
      pcall(vim.lsp.inline_completion.enable, true, { bufnr = bufnr })
      ghost.detach(bufnr)
    else
      ghost.attach(bufnr)
    end
  else
    ghost.detach(bufnr)
  end
  require('coder_lsp.keymaps').attach(bufnr)
end

---@param bufnr integer
local function detach(bufnr)
  require('coder_lsp.ghost').detach(bufnr)
  require('coder_lsp.keymaps').detach(bufnr)
end

--- Set the plugin up: options over the defaults (see :help coder_lsp-options), the server's
--- config (`vim.lsp.config('coder_lsp', opts.server)`), `vim.lsp.enable('coder_lsp')`, and
--- ghost text and keymaps in every buffer the client attaches to. Calling it again replaces the
--- options in force (it does not add to them).
---@param opts? coder_lsp.UserOpts
function M.setup(opts)
  config.options = config.resolve(opts)
  config.configured = true
  highlights()
  require('coder_lsp.commands').register()

  local group = api.nvim_create_augroup(GROUP, { clear = true })
  api.nvim_create_autocmd('ColorScheme', {
    group = group,
    desc = 'coder-lsp: default highlights',
    callback = highlights,
  })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    desc = 'coder-lsp: ghost text and keymaps',
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == config.name then
        attach(client, ev.buf)
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    desc = 'coder-lsp: remove ghost text and keymaps',
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == config.name then
        detach(ev.buf)
        -- The client's last buffer: it is stopping.
        if vim.tbl_count(client.attached_buffers) <= 1 and client:is_stopped() then
          require('coder_lsp.status').forget(client.id)
        end
      end
    end,
  })

  if next(config.options.server) ~= nil then
    vim.lsp.config(config.name, config.options.server)
  end
  if config.options.enable then
    vim.lsp.enable(config.name)
  end

  -- Clients already running (setup called again, or late): apply the new options.
  for _, client in ipairs(vim.lsp.get_clients({ name = config.name })) do
    for bufnr in pairs(client.attached_buffers) do
      attach(client, bufnr)
    end
  end
end

--- The options in force (a copy).
---@return coder_lsp.Opts
function M.options()
  return vim.deepcopy(config.options)
end

--- A short engine status for status lines ('' when no coder_lsp client is attached).
---@param bufnr? integer
---@return string
function M.statusline(bufnr)
  return require('coder_lsp.status').statusline(bufnr)
end

--- The engine state of the coder_lsp client of `bufnr` (default: current buffer): state,
--- reason, model, profile, progress, percentages.
---@param bufnr? integer
---@return coder_lsp.EngineState?
function M.status(bufnr)
  return (require('coder_lsp.status').current(bufnr))
end

--- Accept the whole suggestion. False when none is shown.
---@return boolean
function M.accept()
  return require('coder_lsp.ghost').accept()
end

--- Accept the suggestion's next word. False when none is shown.
---@return boolean
function M.accept_word()
  return require('coder_lsp.ghost').accept_word()
end

--- Accept the rest of the suggestion's current line. False when none is shown.
---@return boolean
function M.accept_line()
  return require('coder_lsp.ghost').accept_line()
end

--- Hide the suggestion. False when none was shown.
---@return boolean
function M.dismiss()
  return require('coder_lsp.ghost').dismiss()
end

--- Ask for a suggestion now (trigger kind Invoked: ranked candidates).
function M.invoke()
  require('coder_lsp.ghost').invoke()
end

--- Whether a suggestion is shown in the current buffer.
---@return boolean
function M.is_visible()
  return require('coder_lsp.ghost').visible()
end

--- The suggestion shown in the current buffer (see ghost.get), or nil.
function M.suggestion()
  return require('coder_lsp.ghost').get()
end

--- Turn automatic suggestions on or off in the current buffer (toggle when `enable` is nil).
---@param enable? boolean
---@return boolean enabled
function M.toggle(enable)
  return require('coder_lsp.ghost').set_auto(0, enable)
end

--- "Fix with AI" on the cursor line's problems (every source) or the selection.
---@param opts? coder_lsp.FixCallOpts
function M.fix(opts)
  require('coder_lsp.fix').fix(opts)
end

return M
