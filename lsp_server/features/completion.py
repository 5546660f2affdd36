"""`textDocument/completion`: one item with the whole completion, for clients without ghost text."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.features.requests import run_completion
from lsp_server.server import CoderLanguageServer

LABEL_CHARS = 60


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
    async def completion(
        ls: CoderLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        result = await run_completion(ls, params.text_document.uri, params.position)
        if result is None or not result.text:
            return types.CompletionList(is_incomplete=True, items=[])
        first = result.text.strip().splitlines()[0] if result.text.strip() else result.text
        label = first if len(first) <= LABEL_CHARS else first[: LABEL_CHARS - 1] + "…"
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Snippet,
            detail="coder-lsp",
            documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=result.text),
            text_edit=types.TextEdit(
                range=types.Range(start=params.position, end=params.position),
                new_text=result.text,
            ),
            insert_text_format=types.InsertTextFormat.PlainText,
            filter_text="",
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
