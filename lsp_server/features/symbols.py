"""`workspace/symbol` (fuzzy, ranked, from the index) and `textDocument/documentSymbol` (a tree)."""

from __future__ import annotations

import asyncio
import functools

from lsprotocol import types
from pygls.uris import from_fs_path

from lsp_server.features.documents import path_of
from lsp_server.server import CoderLanguageServer
from lsp_server.workspace.extract import extract_symbols
from lsp_server.workspace.symbols import Symbol

WORKSPACE_SYMBOL_LIMIT = 100


def _range(s: Symbol) -> types.Range:
    return types.Range(
        start=types.Position(line=s.start_line, character=s.start_col),
        end=types.Position(line=s.end_line, character=s.end_col),
    )


def _selection(s: Symbol) -> types.Range:
    width = len(s.name.encode("utf-16-le")) // 2
    return types.Range(
        start=types.Position(line=s.name_line, character=s.name_col),
        end=types.Position(line=s.name_line, character=s.name_col + width),
    )


def _contains(outer: Symbol, inner: Symbol) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def document_symbols(symbols: list[Symbol]) -> list[types.DocumentSymbol]:
    """Nest symbols by range containment (methods under classes)."""
    ordered = sorted(symbols, key=lambda s: (s.start_byte, -s.end_byte))
    roots: list[types.DocumentSymbol] = []
    stack: list[tuple[Symbol, list[types.DocumentSymbol]]] = []
    for sym in ordered:
        children: list[types.DocumentSymbol] = []
        node = types.DocumentSymbol(
            name=sym.name,
            kind=types.SymbolKind(sym.kind),
            range=_range(sym),
            selection_range=_selection(sym),
            detail=sym.signature or None,
            children=children,
        )
        while stack and not _contains(stack[-1][0], sym):
            stack.pop()
        (stack[-1][1] if stack else roots).append(node)
        stack.append((sym, children))
    return roots


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.WORKSPACE_SYMBOL)
    def workspace_symbol(
        ls: CoderLanguageServer, params: types.WorkspaceSymbolParams
    ) -> list[types.WorkspaceSymbol]:
        ws = ls.workspace_service
        if ws is None:
            return []
        return [
            types.WorkspaceSymbol(
                name=s.name,
                kind=types.SymbolKind(s.kind),
                location=types.Location(uri=from_fs_path(s.path) or s.path, range=_selection(s)),
                container_name=s.container or None,
            )
            for s in ws.index.search(params.query, WORKSPACE_SYMBOL_LIMIT)
        ]

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(
        ls: CoderLanguageServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol]:
        uri = params.text_document.uri
        doc = ls.documents.get(uri)
        ws = ls.workspace_service
        if doc is None or ws is None:
            return []
        tree = await ws.trees.current_tree(uri)  # reparsed in slices, if it is behind
        data = ws.trees.data(uri)
        if data is None or tree is None:
            return []  # unsupported language, binary, or too large to parse
        path = path_of(uri)
        work = functools.partial(
            extract_symbols, data, doc.language_id or "", str(path or uri), tree
        )
        symbols = await asyncio.get_running_loop().run_in_executor(None, work)
        return document_symbols(symbols)
