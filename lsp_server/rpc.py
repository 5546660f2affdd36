"""JSON-RPC over a byte stream, hardened: every request gets exactly one answer.

pygls' own loop drops what it cannot read: a request whose params do not deserialize (a
negative position, a missing `params`), a frame that is not JSON, a message that is not
JSON-RPC. JSON-RPC requires an answer to each request, so this loop reads the frames itself
and answers those with the right error (-32700 parse error, -32600 invalid request, -32602
invalid params), logging one line rather than a traceback, before it hands a well-formed
message to the protocol (which answers unknown methods with -32601 and errors inside a
handler with -32603).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO, Protocol

from lsprotocol.types import (
    EXIT,
    TEXT_DOCUMENT_DID_CHANGE,
    DidChangeTextDocumentNotification,
    DidChangeTextDocumentParams,
    Position,
    Range,
    ResponseErrorMessage,
    TextDocumentContentChangePartial,
    TextDocumentContentChangeWholeDocument,
    VersionedTextDocumentIdentifier,
)
from pygls.protocol import JsonRPCProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage

from lsp_server.completion.stages import TRACE, Trace

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
MAX_MESSAGE_BYTES = 256 << 20
"""Bodies above this are read past and refused (a 50 MB document is fine)."""
HEADER_LINE_LIMIT = 1 << 20
"""A header line longer than this is refused (the asyncio reader's buffer limit)."""


class Reader(Protocol):
    def readline(self) -> Awaitable[bytes]: ...

    def readexactly(self, n: int) -> Awaitable[bytes]: ...


def send_error(protocol: JsonRPCProtocol, msg_id: Any, code: int, message: str) -> None:
    """A JSON-RPC error response (`msg_id` None answers what has no readable id)."""
    error = {"code": code, "message": message}
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})


def _short(exc: BaseException) -> str:
    """The gist of a deserialization error, one line (cattrs says where: `@ $.position.line`)."""
    try:
        from cattrs import transform_error

        text = "; ".join(transform_error(exc, path="$"))
    except Exception:
        text = str(exc)
    text = " ".join(text.split())
    return (text[:300] + "...") if len(text) > 300 else text or type(exc).__name__


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def _structure(protocol: JsonRPCProtocol, data: dict[str, Any]) -> Any:
    """`data` (a JSON-RPC message) as the protocol's typed message, as pygls would make it."""
    converter = protocol._converter
    if "id" in data and "error" in data:
        return converter.structure(data, ResponseErrorMessage)
    method = data.get("method")
    if "id" in data and method is not None:
        return converter.structure(data, protocol.get_message_type(method) or JsonRPCRequestMessage)
    if method is not None:
        return converter.structure(data, protocol.get_message_type(method) or JsonRPCNotification)
    from pygls.protocol.json_rpc import JsonRPCResponseMessage

    kind = protocol._result_types.pop(data["id"], None) or JsonRPCResponseMessage
    try:
        return converter.structure(data, kind)
    except Exception:
        # An answer that does not fit the request's result type (`null` for an applyEdit)
        # still ends the request: its waiter gets the value as it came.
        log.warning("an answer to %r not of the expected type: taken as it came", data["id"])
        return converter.structure(data, JsonRPCResponseMessage)


_CHANGE_KEYS = frozenset(("range", "rangeLength", "text"))


def _uint(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("not an unsigned integer")
    return value


def _position(data: dict[str, Any]) -> Position:
    return Position(line=_uint(data["line"]), character=_uint(data["character"]))


def _fast_did_change(data: dict[str, Any]) -> DidChangeTextDocumentNotification | None:
    """A keystroke's `didChange`, made without cattrs' generic path (a tenth of a millisecond
    a keystroke); None when anything is not as expected: `_structure` then makes it, or says
    what is wrong."""
    try:
        params = data["params"]
        document = params["textDocument"]
        if type(document["version"]) is not int or not isinstance(document["uri"], str):
            return None
        changes: list[TextDocumentContentChangePartial | TextDocumentContentChangeWholeDocument]
        changes = []
        for change in params["contentChanges"]:
            if not isinstance(change["text"], str) or not change.keys() <= _CHANGE_KEYS:
                return None
            if "range" not in change:
                if len(change) != 1:
                    return None
                changes.append(TextDocumentContentChangeWholeDocument(text=change["text"]))
                continue
            length = change.get("rangeLength")
            span = change["range"]
            changes.append(
                TextDocumentContentChangePartial(
                    range=Range(start=_position(span["start"]), end=_position(span["end"])),
                    text=change["text"],
                    range_length=None if length is None else _uint(length),
                )
            )
        identifier = VersionedTextDocumentIdentifier(
            version=document["version"], uri=document["uri"]
        )
        return DidChangeTextDocumentNotification(
            params=DidChangeTextDocumentParams(
                text_document=identifier, content_changes=tuple(changes)
            )
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _hand_over(
    protocol: JsonRPCProtocol, message: Any, msg_id: Any, method: str | None, has_id: bool
) -> None:
    """`protocol.handle_message(message)` without its `isinstance` checks against runtime
    protocols (tens of microseconds a message): the kind is known from the JSON already."""
    if method is None:
        protocol.handle_message(message)  # a response: rare, and pygls sorts out which
        return
    if protocol._shutdown and method != EXIT:
        log.warning("shut down: %s refused", method)
        if has_id:  # LSP: requests after `shutdown` fail with InvalidRequest
            send_error(protocol, msg_id, INVALID_REQUEST, "Invalid Request: server shut down")
        return
    ctx = contextvars.copy_context()
    if has_id:
        ctx.run(protocol._handle_request, msg_id, method, message.params)
    else:
        ctx.run(protocol._handle_notification, method, message.params)


def dispatch(protocol: JsonRPCProtocol, body: bytes, received: float | None = None) -> None:
    """Read one message and hand it to the protocol, or answer why not.

    `received` is when its frame was read (`time.perf_counter`): the handler finds it in
    `TRACE`, to time the request's stages from there.
    """
    received = time.perf_counter() if received is None else received
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        log.warning("not JSON (%d bytes): %s", len(body), exc)
        send_error(protocol, None, PARSE_ERROR, f"Parse error: {exc}")
        return
    if not isinstance(data, dict):
        log.warning("not a JSON-RPC message: a JSON %s", type(data).__name__)
        send_error(protocol, None, INVALID_REQUEST, "Invalid Request: not an object")
        return
    msg_id, method = data.get("id"), data.get("method")
    if not _valid_id(msg_id):
        log.warning("invalid message id %r", msg_id)
        send_error(protocol, None, INVALID_REQUEST, "Invalid Request: the id")
        return
    if data.get("jsonrpc") != "2.0" or (method is not None and not isinstance(method, str)):
        log.warning("not a JSON-RPC 2.0 message (id %r)", msg_id)
        if "id" in data:
            send_error(protocol, msg_id, INVALID_REQUEST, "Invalid Request")
        return
    if method is None and "id" not in data:
        log.warning("a message with neither method nor id")
        send_error(protocol, None, INVALID_REQUEST, "Invalid Request: no method and no id")
        return
    TRACE.set(Trace(received, msg_id))
    if method is not None and "params" not in data:
        data["params"] = None  # optional in JSON-RPC; pygls' types want the field
    try:
        message = (method == TEXT_DOCUMENT_DID_CHANGE and _fast_did_change(data)) or _structure(
            protocol, data
        )
    except Exception as exc:  # what the editor sent does not fit the method's types
        reason = _short(exc)
        if method is not None and "id" in data:
            log.warning("invalid params for %s (id %r): %s", method, msg_id, reason)
            send_error(protocol, msg_id, INVALID_PARAMS, f"Invalid params for {method}: {reason}")
        else:
            log.warning("dropped %s: %s", method or f"a response to {msg_id!r}", reason)
        return
    try:
        _hand_over(protocol, message, msg_id, method, "id" in data)
    except Exception:
        log.exception("could not handle %s (id %r)", method, msg_id)
        if method is not None and "id" in data:
            send_error(protocol, msg_id, INTERNAL_ERROR, "Internal error")


async def pipe_reader(stream: BinaryIO, fallback: Callable[[], Reader]) -> Reader:
    """An asyncio reader of `stream` when it is a pipe or a socket (no thread per read),
    else `fallback()` (a regular file or a terminal: no non-blocking mode forced on it)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return fallback()
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return fallback()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=HEADER_LINE_LIMIT, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    return reader


async def serve(reader: Reader, protocol: JsonRPCProtocol, stop: threading.Event) -> None:
    """Read frames from `reader` and dispatch them until end of input or `stop`."""
    while not stop.is_set():
        headers: dict[str, str] = {}
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line over the stream reader's limit: read past it
                log.warning("refused a header line over the reader's limit")
                send_error(protocol, None, PARSE_ERROR, "Parse error: a header line too long")
                headers = {}
                continue
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if not line:
                return  # the editor closed its end
            if line in (b"\r\n", b"\n"):
                if headers:
                    break
                continue  # a stray blank line between frames
            name, _, value = line.decode("ascii", "replace").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "")
        if not length.isdigit():
            log.warning("a frame without a valid Content-Length: %r", headers)
            send_error(protocol, None, PARSE_ERROR, "Parse error: no valid Content-Length")
            continue
        size = int(length)
        try:
            if size > MAX_MESSAGE_BYTES:
                for start in range(0, size, 1 << 20):
                    await reader.readexactly(min(1 << 20, size - start))
                log.warning("refused a %d-byte message", size)
                send_error(protocol, None, INVALID_REQUEST, "Invalid Request: too large")
                continue
            body = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if len(body) < size:
            return  # end of input inside a frame (stdin's reader returns what there was)
        dispatch(protocol, body, time.perf_counter())
        # A buffered reader returns the next frame without yielding: let the handler's task
        # take its first step first, so messages are handled in the order they came.
        await asyncio.sleep(0)
