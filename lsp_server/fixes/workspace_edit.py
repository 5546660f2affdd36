"""Proposals as LSP `WorkspaceEdit`s: versioned document changes, review annotations.

Edits are `documentChanges` against the exact document version they were computed for, so an
editor refuses them once the document has moved on. Files under `review.required` carry a
change annotation with `needsConfirmation`, so the editor asks before applying.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from lsp_server.fixes.edits import Replacement, minimal_replacements, to_text_edits

REVIEW_ANNOTATION = "coder-lsp.review"


class EditSupport:
    """What the client's `workspace.workspaceEdit` capabilities allow."""

    def __init__(self, caps: types.ClientCapabilities) -> None:
        edit = caps.workspace.workspace_edit if caps.workspace else None
        operations = (edit.resource_operations or []) if edit else []
        # Resource operations exist only in documentChanges: Neovim 0.11 declares them
        # without the documentChanges flag, and applies versioned document changes.
        self.document_changes = bool(edit and (edit.document_changes or operations))
        self.create = types.ResourceOperationKind.Create in operations
        self.annotations = bool(edit and edit.change_annotation_support is not None)


def _edits(
    text: str, replacements: Sequence[Replacement], annotation: str | None
) -> list[types.TextEdit | types.AnnotatedTextEdit]:
    plain = to_text_edits(text, replacements)
    if annotation is None:
        return list(plain)
    return [
        types.AnnotatedTextEdit(range=e.range, new_text=e.new_text, annotation_id=annotation)
        for e in plain
    ]


def _annotations(label: str, description: str) -> dict[str, types.ChangeAnnotation]:
    return {
        REVIEW_ANNOTATION: types.ChangeAnnotation(
            label=label, needs_confirmation=True, description=description or None
        )
    }


def document_edit(
    uri: str,
    version: int | None,
    text: str,
    replacements: Sequence[Replacement],
    *,
    support: EditSupport,
    review: bool,
    label: str,
    description: str = "",
) -> types.WorkspaceEdit:
    """A WorkspaceEdit applying `replacements` to `text`, version `version` of `uri`."""
    annotation = REVIEW_ANNOTATION if review else None
    edits = _edits(text, replacements, annotation)
    if not support.document_changes:
        return types.WorkspaceEdit(
            changes={uri: [types.TextEdit(e.range, e.new_text) for e in edits]}
        )
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version
                ),
                edits=edits,
            )
        ],
        change_annotations=_annotations(label, description) if review else None,
    )


def new_file_edit(
    path: Path,
    text: str,
    *,
    review: bool,
    label: str,
    description: str = "",
) -> types.WorkspaceEdit:
    """A WorkspaceEdit creating `path` (kept if it appeared meanwhile) and filling it."""
    uri = from_fs_path(str(path)) or path.as_uri()
    annotation = REVIEW_ANNOTATION if review else None
    start = types.Position(line=0, character=0)
    insert: types.TextEdit | types.AnnotatedTextEdit = (
        types.AnnotatedTextEdit(
            range=types.Range(start=start, end=start), new_text=text, annotation_id=annotation
        )
        if annotation
        else types.TextEdit(range=types.Range(start=start, end=start), new_text=text)
    )
    return types.WorkspaceEdit(
        document_changes=[
            types.CreateFile(
                uri=uri,
                options=types.CreateFileOptions(ignore_if_exists=True),
                annotation_id=annotation,
            ),
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=[insert],
            ),
        ],
        change_annotations=_annotations(label, description) if review else None,
    )


def text_edit(
    uri: str,
    version: int | None,
    old: str,
    new: str,
    *,
    support: EditSupport,
    review: bool,
    label: str,
    description: str = "",
) -> types.WorkspaceEdit:
    """A WorkspaceEdit turning `old` (version `version` of `uri`) into `new`, minimally."""
    return document_edit(
        uri,
        version,
        old,
        minimal_replacements(old, new),
        support=support,
        review=review,
        label=label,
        description=description,
    )


__all__ = ["REVIEW_ANNOTATION", "EditSupport", "document_edit", "new_file_edit", "text_edit"]
