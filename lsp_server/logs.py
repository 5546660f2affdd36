"""Logging to stderr, and to the editor through `window/logMessage` once it is connected."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import BinaryIO

from lsprotocol import types

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
    logging.DEBUG: types.MessageType.Log,
}

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class EditorLogHandler(logging.Handler):
    """Forwards records from any thread to the editor as `window/logMessage`."""

    def __init__(self, send: Callable[[types.LogMessageParams], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start forwarding; records before this only go to stderr."""
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or record.name.startswith("pygls"):
            return
        kind = _LEVELS.get(record.levelno, types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=self.format(record))
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(self._send, params)


class ExpectedErrors(logging.Filter):
    """pygls logs a traceback for every error a handler raises; for the errors that answer
    what the editor sent (invalid params, content modified, a cancelled request) that is noise
    on every stray keystroke: keep one line."""

    CODES = frozenset({-32602, -32801, -32800})

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a filter must never stop what logged
            self._shorten(record)
        return True

    def _shorten(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if record.msg == "Error sending data" and _output_gone(exc):
            # After `exit`, or when the editor closed its end: the message cannot go anywhere.
            record.msg, record.args = "not sent, the output is closed: %s", (exc,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return
        code = getattr(exc, "code", None)
        if exc is not None and code in self.CODES:
            original = record.getMessage()
            record.msg = "%s: %s"
            record.args = (original, f"{type(exc).__name__}: {exc}")
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"


THIRD_PARTY = r"(vllm|torch|transformers|triton)(\.|$)"
"""Modules whose deprecation notices are about their own internals, not the user's code."""


def _output_gone(exc: BaseException | None) -> bool:
    """Whether a failed write failed because the stream is closed."""
    if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
        return True
    return isinstance(exc, ValueError) and "closed file" in str(exc)


def set_level(level: str) -> None:
    """The server's log level; pygls' record of every message sent and received (large, on
    every keystroke) only at debug, and vLLM's lines (most of stderr otherwise: its progress,
    notes about this machine's build) only from errors up unless at debug."""
    logging.getLogger().setLevel(level.upper())
    debug = level.lower() == "debug"
    logging.getLogger("pygls").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("vllm").setLevel(logging.DEBUG if debug else logging.ERROR)


def quiet_libraries() -> None:
    """Deprecation notices that vLLM, torch and transformers raise about each other, and
    torch's C++ warnings, are not the user's to act on: off, here and in the engine's
    processes (they inherit the environment and, when forked, the filters). A debug log
    level keeps them."""
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    _quiet_vllm_processes()
    os.environ.setdefault(
        "PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning,ignore::UserWarning"
    )


VLLM_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"vllm": {"level": "ERROR"}},
}


def _quiet_vllm_processes() -> None:
    """vLLM's engine processes log on their own, bare lines on stderr from warnings up (its
    notes about this machine's build): a logging config file, which vLLM applies in every
    process it starts, keeps errors only. Left alone when the user configures vLLM's
    logging, or when the file cannot be written."""
    if "VLLM_CONFIGURE_LOGGING" in os.environ or "VLLM_LOGGING_CONFIG_PATH" in os.environ:
        return
    from engine.profiles import cache_root

    path = cache_root() / "vllm-logging.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(VLLM_LOGGING)
        if not path.is_file() or path.read_text() != body:
            path.write_text(body)
    except OSError:
        return
    os.environ["VLLM_CONFIGURE_LOGGING"] = "1"
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(path)


def configure(level: str = "info") -> None:
    """Root logging to stderr; vLLM is told not to install its own stdout handler."""
    if level.lower() != "debug":
        quiet_libraries()
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    root = logging.getLogger()
    set_level(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per HTTP request otherwise
    pygls_rpc = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, ExpectedErrors) for f in pygls_rpc.filters):
        pygls_rpc.addFilter(ExpectedErrors())
    if not any(getattr(h, "_coder_lsp", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._coder_lsp = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def protect_stdout() -> tuple[BinaryIO, BinaryIO]:
    """Reserve the real stdin/stdout for the protocol; point fd 1 at stderr.

    Anything else that writes to stdout (a stray print, a library, the vLLM engine process
    that inherits fd 1) then lands on stderr instead of corrupting the JSON-RPC stream.
    """
    proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return sys.stdin.buffer, proto_out
