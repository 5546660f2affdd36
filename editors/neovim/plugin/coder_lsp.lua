-- coder-lsp: the commands and the engine's progress; ghost text and keymaps wait for
-- require('coder_lsp').setup().
if vim.g.loaded_coder_lsp then
  return
end
vim.g.loaded_coder_lsp = 1

require('coder_lsp.commands').register()
