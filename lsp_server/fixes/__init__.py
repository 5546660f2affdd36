"""Code actions: diagnostics, failing tests, edit construction."""
