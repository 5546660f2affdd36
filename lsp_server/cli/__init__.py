"""Command implementations behind `coder-lsp`."""
