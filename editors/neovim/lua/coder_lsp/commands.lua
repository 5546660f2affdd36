--- User commands and the LspProgress listener; idempotent (plugin/coder_lsp.lua and setup()).

local M = {}

function M.register()
  local group = vim.api.nvim_create_augroup('coder_lsp.progress', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = group,
    desc = 'coder-lsp: record the engine loading progress',
    callback = function(ev)
      local client = ev.data and vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == require('coder_lsp.config').name then
        require('coder_lsp.status').on_progress(ev)
      end
    end,
  })

  vim.api.nvim_create_user_command('CoderLspStatus', function()
    require('coder_lsp.status').command()
  end, { desc = 'coder-lsp: engine state, profile, model, progress and statistics' })

  vim.api.nvim_create_user_command('CoderLspToggle', function()
    local on = require('coder_lsp').toggle()
    vim.notify('coder-lsp: automatic suggestions ' .. (on and 'on' or 'off') .. ' in this buffer')
  end, { desc = 'coder-lsp: automatic suggestions on/off in this buffer' })
end

return M
