"""What never reaches a model: secret-holding files and `privacy.exclude` (`paths`), and secret
values in everything that is sent (`redact`, the step every prompt passes; `guard` applies it
at the engine boundary)."""

from lsp_server.privacy.paths import NEVER_SENT, allow_function, match_function, never_sent
from lsp_server.privacy.redact import (
    Redacted,
    Redactor,
    foreign_placeholder,
    redactor_for,
    restore,
    summary,
)
from lsp_server.privacy.rules import PLACEHOLDER as PLACEHOLDER_PATTERN

__all__ = [
    "NEVER_SENT",
    "PLACEHOLDER_PATTERN",
    "Redacted",
    "Redactor",
    "allow_function",
    "foreign_placeholder",
    "match_function",
    "never_sent",
    "redactor_for",
    "restore",
    "summary",
]
