"""The workspace model: per-document parse trees, a symbol index, file watching."""
