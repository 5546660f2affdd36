"""`textDocument/codeAction` and `codeAction/resolve`: AI fixes and generated tests.

Listing is cheap and never calls a model: one "Fix with AI" per diagnostic, two actions for a
selection, and "Generate unit tests" on a function or class. The model runs when the editor
resolves the chosen action; clients that cannot resolve get the edits computed in the listing
itself, only when the user asked for actions, with a progress notification, for at most
`EAGER_S`: an action not ready by then comes with a command that sends its edit once it is
(`workspace/applyEdit`), so the menu opens in time. Edits are never applied behind the user's
back: they are returned, or sent, for the editor to apply once the user chose the action.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import tree_sitter
from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams
from pygls.uris import from_fs_path

from lsp_server.features.documents import path_of
from lsp_server.fixes.prompt import Problem
from lsp_server.fixes.propose import FixError, propose_fix, propose_tests
from lsp_server.fixes.region import enclosing_definition
from lsp_server.fixes.workspace_edit import EditSupport, document_edit, new_file_edit, text_edit
from lsp_server.positions import InvalidPosition, offset_at
from lsp_server.privacy import allow_function, match_function
from lsp_server.server import CoderLanguageServer

log = logging.getLogger(__name__)

FIX_KIND = "quickfix.coderLsp"
TESTS_KIND = "source.coderLsp.generateTests"
FIX_LOG = "coderLsp/fixLog"
MAX_TITLE = 80
MAX_PARSE_CHARS = 2_000_000
"""Documents larger than this are not parsed to find a definition for test generation."""
MAX_EAGER_ACTIONS = 3
"""Most actions computed in one listing for clients that cannot resolve."""
EAGER_S = 1.5
"""How long such a listing waits for edits (eglot gives up after 10 s; a menu should open in
under 2): an action not computed by then is listed with `APPLY_COMMAND`, which applies its
edit once computed (the user chose it), when the client can apply edits."""
APPLY_COMMAND = "coderLsp.applyCodeAction"
MAX_PENDING = 16
"""Actions still being computed for `APPLY_COMMAND`, at most (the oldest are dropped)."""

_pending: OrderedDict[str, asyncio.Task[types.CodeAction]] = OrderedDict()


def _title_message(message: str) -> str:
    first = next((line.strip() for line in message.splitlines() if line.strip()), "problem")
    return first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1] + "\u2026"


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == o or kind.startswith(o + ".") for o in only)


def _can_resolve(ls: CoderLanguageServer) -> bool:
    caps = ls.client_capabilities.text_document
    action = caps.code_action if caps else None
    if action is None or not action.data_support or action.resolve_support is None:
        return False
    return "edit" in action.resolve_support.properties


def _root(ls: CoderLanguageServer) -> str | None:
    return str(ls.root) if ls.root is not None else None


def list_actions(ls: CoderLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The actions at `params.range`, without calling a model."""
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    if doc is None or not ls.settings.fixes.enabled:
        return []
    path = path_of(uri)
    if path is not None and not allow_function(ls.settings.privacy.exclude, _root(ls))(str(path)):
        return []
    only = [str(k) for k in params.context.only] if params.context.only else None
    base = {"uri": uri, "version": doc.version}
    actions: list[types.CodeAction] = []
    if _wanted(FIX_KIND, only):
        for diagnostic in params.context.diagnostics:
            actions.append(
                types.CodeAction(
                    title=f"Fix with AI: {_title_message(diagnostic.message)}",
                    kind=FIX_KIND,
                    diagnostics=[diagnostic],
                    data={**base, "action": "fix", "range": _range_data(diagnostic.range)},
                )
            )
        if params.range.start != params.range.end:
            for title, action in (
                ("Fix bug in selection", "selection"),
                ("Explain and fix", "explain"),
            ):
                actions.append(
                    types.CodeAction(
                        title=title,
                        kind=FIX_KIND,
                        data={**base, "action": action, "range": _range_data(params.range)},
                    )
                )
    if _wanted(TESTS_KIND, only) and path is not None:
        name = _definition_at(ls, uri, doc.source, doc.language_id or "", params.range.start)
        if name:
            actions.append(
                types.CodeAction(
                    title=f"Generate unit tests for {name}",
                    kind=TESTS_KIND,
                    data={**base, "action": "tests", "range": _range_data(params.range)},
                )
            )
    return actions


def _range_data(r: types.Range) -> list[int]:
    return [r.start.line, r.start.character, r.end.line, r.end.character]


def _range_of(value: Any) -> types.Range:
    line0, char0, line1, char1 = (int(v) for v in value)
    return types.Range(
        start=types.Position(line=line0, character=char0),
        end=types.Position(line=line1, character=char1),
    )


def _tree(ls: CoderLanguageServer, uri: str, text: str) -> tree_sitter.Tree | None:
    """The document's live parse tree, when it is the tree of exactly `text`."""
    trees = ls.workspace_service.trees if ls.workspace_service else None
    return trees.tree(uri) if trees is not None and trees.text(uri) == text else None


def _definition_at(
    ls: CoderLanguageServer, uri: str, text: str, language_id: str, position: types.Position
) -> str:
    tree = _tree(ls, uri, text)
    if tree is None and len(text) > MAX_PARSE_CHARS:
        return ""
    try:
        offset = offset_at(text, position.line, position.character)
    except InvalidPosition:
        return ""
    region = enclosing_definition(text, language_id, offset, offset, tree=tree)
    return region.name if region is not None else ""


def _problems(
    ls: CoderLanguageServer, path: Path | None, action: types.CodeAction
) -> list[Problem]:
    problems: list[Problem] = []
    failing = ls.reports.problems_in(str(path)) if ls.reports is not None and path else []
    for d in action.diagnostics or []:
        details = ""
        if isinstance(d.data, dict) and isinstance(d.data.get("details"), str):
            details = d.data["details"]
        elif failing:  # the client dropped `data`: find the failing test by line
            details = next((f.details for f in failing if f.line - 1 == d.range.start.line), "")
        problems.append(
            Problem(
                line=d.range.start.line,
                message=d.message,
                source=d.source or "",
                details=details,
            )
        )
    return problems


async def resolve_action(ls: CoderLanguageServer, action: types.CodeAction) -> types.CodeAction:
    """Compute the action's edit; on failure the action comes back without one and the user
    is told why."""
    data = action.data if isinstance(action.data, dict) else None
    if data is None or data.get("action") not in ("fix", "selection", "explain", "tests"):
        return action
    uri, version = str(data.get("uri", "")), data.get("version")
    doc = ls.documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"{uri} is not open")
    if doc.version != version:
        raise JsonRpcContentModified(
            f"the document changed since this action was listed (version {version}, now "
            f"{doc.version}); ask for code actions again"
        )
    text, language_id = doc.source, doc.language_id or ""
    try:
        r = _range_of(data.get("range"))
        start = offset_at(text, r.start.line, r.start.character)
        end = offset_at(text, r.end.line, r.end.character)
    except (InvalidPosition, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(f"invalid range in the action's data: {exc}") from None
    if ls.host is None:
        _failed(ls, data, "the engine is not running")
        return action
    path = path_of(uri)
    kind = str(data["action"])
    support = EditSupport(ls.client_capabilities)
    started = time.perf_counter()
    request_id = f"fix-{uuid.uuid4().hex[:12]}"
    progress = await _begin_progress(ls, f"coder-lsp: {action.title}")
    try:
        if kind == "tests":
            action.edit = await _tests_edit(
                ls, uri, text, language_id, path, start, support, request_id
            )
        else:
            proposal = await propose_fix(
                ls.host,
                text=text,
                language_id=language_id,
                path=str(path) if path else "",
                start=start,
                end=end,
                problems=_problems(ls, path, action),
                selection=kind in ("selection", "explain"),
                explain=kind == "explain",
                workspace=ls.workspace_service,
                tree=_tree(ls, uri, text),
                request_id=request_id,
                read=lambda p: _read(ls, p),
            )
            same = path is not None and proposal.path == str(path)
            target_uri = uri if same else from_fs_path(proposal.path) or ""
            opened = ls.documents.get(target_uri)
            action.edit = document_edit(
                target_uri,
                opened.version if opened is not None else None,
                proposal.old_text,
                proposal.replacements,
                support=support,
                review=_review(ls, proposal.path),
                label=action.title,
                description=proposal.explanation,
            )
            if proposal.explanation:
                ls.show(f"coder-lsp: {proposal.explanation}")
    except FixError as exc:
        _failed(ls, data, str(exc), request_id=request_id)
        return action
    finally:
        _end_progress(ls, progress)
    ls.fix_log.append(
        {
            "uri": uri,
            "version": doc.version,
            "action": kind,
            "outcome": "edit",
            "requestId": request_id,
            "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        }
    )
    return action


async def _tests_edit(
    ls: CoderLanguageServer,
    uri: str,
    text: str,
    language_id: str,
    path: Path | None,
    offset: int,
    support: EditSupport,
    request_id: str,
) -> types.WorkspaceEdit:
    if ls.host is None:
        raise FixError("the engine is not running")
    proposal = await propose_tests(
        ls.host,
        text=text,
        language_id=language_id,
        path=str(path) if path else "",
        offset=offset,
        read=lambda p: _read(ls, p),
        workspace=ls.workspace_service,
        tree=_tree(ls, uri, text),
        request_id=request_id,
    )
    target = proposal.target
    review = _review(ls, str(target.path))
    label = f"Unit tests for {proposal.name}"
    if proposal.old_text is None:
        if not (support.document_changes and support.create):
            raise FixError(
                f"this editor cannot create files through an edit; create {target.path} and "
                "ask again"
            )
        return new_file_edit(target.path, proposal.new_text, review=review, label=label)
    target_uri = uri if target.same_file else from_fs_path(str(target.path)) or ""
    opened = ls.documents.get(target_uri)
    version = opened.version if opened is not None else None
    return text_edit(
        target_uri,
        version,
        proposal.old_text,
        proposal.new_text,
        support=support,
        review=review,
        label=label,
    )


def _read(ls: CoderLanguageServer, path: Path) -> str | None:
    """A file's text as the user sees it: the editor's copy when open, else the disk's."""
    opened = ls.documents.get(from_fs_path(str(path)) or path.as_uri())
    if opened is not None:
        return str(opened.source)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _review(ls: CoderLanguageServer, path: str) -> bool:
    """Whether edits of `path` need the user's confirmation (`review.required`)."""
    return match_function(ls.settings.review.required, _root(ls))(path)


def _failed(
    ls: CoderLanguageServer, data: dict[str, Any], reason: str, *, request_id: str = ""
) -> None:
    log.info("no edit for %s: %s", data.get("action"), reason)
    ls.fix_log.append(
        {
            "uri": data.get("uri"),
            "version": data.get("version"),
            "action": data.get("action"),
            "outcome": "error",
            "reason": reason,
            "requestId": request_id,
        }
    )
    ls.show(f"coder-lsp: no fix: {reason}", types.MessageType.Warning)


async def _begin_progress(ls: CoderLanguageServer, title: str) -> str | None:
    caps = ls.client_capabilities.window
    if not (caps and caps.work_done_progress):
        return None
    token = f"coder-lsp/fix/{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
    except Exception:
        log.debug("client refused the progress token", exc_info=True)
        return None
    ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False))
    return token


def _end_progress(ls: CoderLanguageServer, token: str | None) -> None:
    if token is not None:
        ls.end_progress(token)


def _can_apply(ls: CoderLanguageServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.apply_edit)


async def eager_actions(
    ls: CoderLanguageServer, actions: list[types.CodeAction]
) -> list[types.CodeAction]:
    """The actions with their edits, for a client that cannot resolve, within `EAGER_S`: those
    computed by then with their edit, the others with `APPLY_COMMAND` (or left out when the
    client cannot apply an edit the server sends)."""
    tasks = [asyncio.ensure_future(resolve_action(ls, a)) for a in actions]
    await asyncio.wait(tasks, timeout=EAGER_S)
    listed: list[types.CodeAction] = []
    for action, task in zip(actions, tasks, strict=True):
        if task.done():
            if not task.cancelled() and task.exception() is None and task.result().edit:
                listed.append(task.result())
            continue
        if not _can_apply(ls):
            task.cancel()
            continue
        key = uuid.uuid4().hex
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never run: fine
        _pending[key] = task
        while len(_pending) > MAX_PENDING:
            _pending.popitem(last=False)[1].cancel()
        listed.append(
            types.CodeAction(
                title=action.title,
                kind=action.kind,
                diagnostics=action.diagnostics,
                command=types.Command(title=action.title, command=APPLY_COMMAND, arguments=[key]),
            )
        )
    return listed


def register(server: CoderLanguageServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[FIX_KIND, TESTS_KIND], resolve_provider=True),
    )
    async def code_action(
        ls: CoderLanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        actions = list_actions(ls, params)
        if not actions or _can_resolve(ls):
            return actions
        # This client cannot resolve: compute edits now, only when the user asked.
        if params.context.trigger_kind == types.CodeActionTriggerKind.Automatic:
            return []
        return await eager_actions(ls, actions[:MAX_EAGER_ACTIONS])

    @server.command(APPLY_COMMAND)
    async def apply_code_action(ls: CoderLanguageServer, key: str) -> None:
        """Apply an action listed before its edit was ready, once it is (the user chose it)."""
        task = _pending.pop(key, None)
        if task is None:
            raise JsonRpcInvalidParams("this action is gone; ask for code actions again")
        action = await task
        if action.edit is None:
            return  # why not was shown when it failed
        await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=action.edit, label=action.title)
        )

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(
        ls: CoderLanguageServer, params: types.CodeAction
    ) -> types.CodeAction:
        return await resolve_action(ls, params)

    @server.feature(FIX_LOG)
    def fix_log(ls: CoderLanguageServer, params: Any) -> list[dict[str, Any]]:
        """The latest resolved actions, oldest first: edit or error, with the reason."""
        return list(ls.fix_log)
