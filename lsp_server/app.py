"""The server composed: `CoderLanguageServer` and its features, registered in a declared order.

Here and not in `server.py`, so that the features may import the server and the server knows
none of them.
"""

from __future__ import annotations

from pathlib import Path

from lsp_server.features import (
    code_actions,
    completion,
    documents,
    inline_completion,
    lifecycle,
    status,
    symbols,
)
from lsp_server.server import CoderLanguageServer

FEATURES = (lifecycle, documents, inline_completion, completion, code_actions, symbols, status)
"""Registered in this order: lifecycle first (initialize, shutdown), status last."""


def build_server(
    *, cli_profile: str | None = None, config_file: Path | None = None
) -> CoderLanguageServer:
    """A server with every feature registered."""
    server = CoderLanguageServer(cli_profile=cli_profile, config_file=config_file)
    for feature in FEATURES:
        feature.register(server)
    return server
