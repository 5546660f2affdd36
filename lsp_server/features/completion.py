"""`textDocument/completion`: one item with the whole completion, for clients without ghost text.

The item replaces the word being typed at the cursor with that word and the completion, and
filters as that text: clients that filter by the typed prefix (Helix, Emacs) keep it, and one
that first inserts the label and then applies the edit (eglot) ends with the right line.
"""

from __future__ import annotations

from lsprotocol import types

from lsp_server.features.requests import run_completion
from lsp_server.positions import InvalidPosition
from lsp_server.server import CoderLanguageServer

LABEL_CHARS = 60


def typed_word(ls: CoderLanguageServer, uri: str, position: types.Position) -> str:
    """The identifier characters right before `position` on its line ("" when none)."""
    try:
        seen, _ = ls.documents.view(uri, position.line, position.character, 0)
    except (InvalidPosition, KeyError):
        return ""
    start = seen.offset
    while start > 0 and (seen.text[start - 1].isalnum() or seen.text[start - 1] in "_$"):
        start -= 1
    return seen.text[start : seen.offset]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
    async def completion(
        ls: CoderLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        uri, position = params.text_document.uri, params.position
        result = await run_completion(ls, uri, position)
        if result is None or not result.text:
            return types.CompletionList(is_incomplete=True, items=[])
        word = typed_word(ls, uri, position)
        new_text = word + result.text
        stripped = new_text.strip()
        first = stripped.splitlines()[0] if stripped else new_text
        label = first if len(first) <= LABEL_CHARS else first[: LABEL_CHARS - 1] + "\u2026"
        start = types.Position(line=position.line, character=position.character - _utf16_len(word))
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Snippet,
            detail="coder-lsp",
            documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=new_text),
            text_edit=types.TextEdit(
                range=types.Range(start=start, end=position), new_text=new_text
            ),
            insert_text_format=types.InsertTextFormat.PlainText,
            filter_text=new_text,
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
