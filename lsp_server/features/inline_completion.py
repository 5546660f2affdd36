"""`textDocument/inlineCompletion`: ghost text at the cursor."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.features.requests import run_completion
from lsp_server.server import CoderLanguageServer


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CoderLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        """One item on automatic triggers; ranked candidates, best first, when invoked.

        With a menu item selected (`selectedCompletionInfo`), the completion follows that
        item, and each answer replaces the item's range with its text and the rest (editors
        show only completions that extend the selected item)."""
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        selected = params.context.selected_completion_info
        result = await run_completion(
            ls, params.text_document.uri, params.position, invoked=invoked, selected=selected
        )
        if result is None or not result.items:
            return types.InlineCompletionList(items=[])
        if selected is not None:
            return types.InlineCompletionList(
                items=[
                    types.InlineCompletionItem(insert_text=selected.text + i, range=selected.range)
                    for i in result.items
                ]
            )
        cursor = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=i, range=cursor) for i in result.items]
        )
