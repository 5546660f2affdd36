"""Repository context for completion prompts: definitions, similar code, the file path."""
