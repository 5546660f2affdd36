"""A keystroke's `didChange` is made without cattrs, exactly as cattrs would make it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lsprotocol import types
from pygls.protocol import default_converter

from lsp_server.rpc import _fast_did_change


def message(*changes: dict[str, Any], version: Any = 7) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": types.TEXT_DOCUMENT_DID_CHANGE,
        "params": {
            "textDocument": {"uri": "file:///w/a.py", "version": version},
            "contentChanges": list(changes),
        },
    }


def span(a: Any, b: Any, c: Any, d: Any) -> dict[str, Any]:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


@pytest.mark.parametrize(
    "data",
    [
        message({"range": span(3, 4, 3, 4), "text": "x"}),
        message({"range": span(0, 0, 2, 1), "rangeLength": 9, "text": ""}),
        message({"text": "whole\n"}),
        message({"range": span(1, 0, 1, 0), "text": "é\U0001f600"}, {"text": "then all"}),
        message(),
    ],
)
def test_the_same_message_as_cattrs_makes(data: dict[str, Any]) -> None:
    expected = default_converter().structure(  # type: ignore[no-untyped-call]  # pygls
        copy.deepcopy(data), types.DidChangeTextDocumentNotification
    )
    assert _fast_did_change(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        message({"range": span(-1, 0, 0, 0), "text": "x"}),  # negative line
        message({"range": span(0, True, 0, 1), "text": "x"}),  # a boolean
        message({"range": span(0, 1.0, 0, 1), "text": "x"}),  # a float
        message({"range": span(0, 0, 0, 0), "text": 5}),
        message({"range": span(0, 0, 0, 0)}),  # no text
        message({"range": {"start": {"line": 0}}, "text": "x"}),
        message({"range": span(0, 0, 0, 0), "text": "x", "extra": 1}),
        message({"text": "x", "rangeLength": 1}),
        message({"text": "x"}, version="7"),
        {"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE, "params": None},
        {"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE, "params": {"x": 1}},
    ],
)
def test_anything_unexpected_is_left_to_cattrs(data: dict[str, Any]) -> None:
    """None: the generic path makes it, or answers with what is wrong."""
    assert _fast_did_change(data) is None
