-- coder-lsp: AI code completion (ghost text) and "Fix with AI" code actions.
--
-- A plain |vim.lsp.Config| for Neovim 0.11's `vim.lsp.config()` / `vim.lsp.enable()`:
--
--   vim.lsp.enable('coder_lsp')
--
-- `require('coder_lsp').setup()` enables it too and adds ghost text, keymaps, the engine status
-- and `:checkhealth coder_lsp`. Override any field with `vim.lsp.config('coder_lsp', {...})` or
-- `setup({ server = {...} })`.

---@type vim.lsp.Config
return {
  cmd = { 'coder-lsp', 'serve', '--stdio' },
  filetypes = {
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'java',
    'c',
    'cpp',
    'go',
    'rust',
  },
  -- The nearest directory holding one of these is the workspace the server indexes.
  root_markers = {
    'coder-lsp.toml',
    'pyproject.toml',
    'setup.py',
    'package.json',
    'tsconfig.json',
    'go.mod',
    'Cargo.toml',
    'pom.xml',
    'build.gradle',
    'build.gradle.kts',
    'compile_commands.json',
    '.git',
  },
  capabilities = {
    textDocument = {
      -- LSP 3.18; Neovim 0.11 does not advertise it itself.
      inlineCompletion = { dynamicRegistration = false },
    },
  },
  handlers = {
    -- The engine's state: starting, ready, failed (with the reason) or stopped.
    ['coderLsp/status'] = function(err, params, ctx)
      return require('coder_lsp.status').on_status(err, params, ctx)
    end,
    -- Neovim's own handler, less the engine failure the plugin has already reported.
    ['window/showMessage'] = function(err, params, ctx, config)
      return require('coder_lsp.status').on_show_message(err, params, ctx, config)
    end,
  },
}
