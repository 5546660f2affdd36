"""The language server: settings, the engine's lifecycle, and explicit feature registration."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from engine import EngineState, EngineStatus
from engine.profiles import auto_profile, cache_root
from lsp_server import __version__, rpc, trust
from lsp_server.completion.pipeline import Reuse
from lsp_server.completion.stages import TRACE
from lsp_server.config import (
    Settings,
    SettingsSource,
    ignored_settings,
    load_settings,
    resolve_profile,
    source_from_json,
    source_from_toml_file,
    sources_from_workspace,
)
from lsp_server.engine_host import EngineHost
from lsp_server.fixes.reports import ReportStore
from lsp_server.logs import EditorLogHandler, set_level
from lsp_server.loop_probe import LoopProbe
from lsp_server.privacy.redact import redactor_for
from lsp_server.workspace.documents import DocumentTrees
from lsp_server.workspace.service import WorkspaceService
from lsp_server.workspace.watcher import Watcher

log = logging.getLogger(__name__)

PROGRESS_TOKEN = "coder-lsp/engine"
INDEX_PROGRESS_TOKEN = "coder-lsp/index"
STATUS_NOTIFICATION = "coderLsp/status"
WORKSPACE_TRUSTED = "workspaceTrusted"
"""initializationOptions key: the editor trusts the workspace (VS Code's Workspace Trust)."""
AUTH_TOKEN = "authToken"
"""initializationOptions key: the token a TCP client presents (`serve --tcp`)."""
COMPLETION_LOG_SIZE = 4096
RESTART_MAX_DELAY_S = 30.0
STABLE_S = 60.0
"""An engine that ran this long before it died starts its restart backoff over."""
PARENT_CHECK_S = 1.0
FIX_LOG_SIZE = 256


def freeze_heap() -> None:
    """Leave what startup built (the index, the engine, the secret rules) out of the garbage
    collector's full passes, which would otherwise walk it all every few thousand requests
    (tens of milliseconds in a keystroke's way)."""
    gc.freeze()


class _Utf16Protocol(LanguageServerProtocol):
    """pygls' protocol with positions always in UTF-16.

    pygls would take the client's first preferred encoding (Neovim prefers UTF-8), but the
    server's document model counts UTF-16 code units, which every client must support.
    """

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    def _send_data(self, data: Any) -> None:
        super()._send_data(data)
        if (trace := TRACE.get()) is not None:
            trace.answered(data)

    # Document sync: the server keeps its own model (`CoderLanguageServer.documents`, LSP line
    # breaks, clamped positions, spliced edits), so pygls' copy is not kept at all.

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


REMOTE_SWITCH_S = 0.001
"""With a remote engine, worker threads (indexing, outlines, recent documents' windows) hand
the GIL back to the event loop within 1 ms rather than Python's default 5 ms: a request waits
less."""
EMBEDDED_SWITCH_S = 0.005
"""With the embedded engine, Python's default: vLLM's own threads in this process then pass
tokens on without a GIL hand-over every millisecond (at 1 ms, generations through the server
took 1.2 times as long as bare AsyncLLM's; at 5 ms, the same)."""


class CoderLanguageServer(LanguageServer):
    """coder-lsp's server state: settings sources, the engine host, requests in flight."""

    def __init__(self, *, cli_profile: str | None = None, config_file: Path | None = None) -> None:
        super().__init__("coder-lsp", __version__, protocol_cls=_Utf16Protocol)
        self.cli_profile = cli_profile
        self.config_file = config_file
        self.root: Path | None = None
        self.init_options: Any = None
        self.client_settings: Any = None
        self.client_trusts_workspace = False
        self.trust_notices: set[str] = set()
        """Untrusted-workspace messages already shown (each once a session)."""
        self.settings = Settings()
        self.host: EngineHost | None = None
        self.documents = DocumentTrees(background=True)
        """The open documents: the one model of their text, version and tree."""
        self.workspace_service: WorkspaceService | None = None
        self.inflight: dict[int, asyncio.Task[Any]] = {}
        """Completion requests being served, by id of their task."""
        self.reuse = Reuse()
        self.completion_log: deque[dict[str, Any]] = deque(maxlen=COMPLETION_LOG_SIZE)
        """The latest completions answered: where from, what was shown (for benchmarks)."""
        self.index_updates: dict[str, asyncio.TimerHandle | asyncio.Task[None]] = {}
        self.index_work: dict[str, asyncio.Future[None]] = {}
        """Open documents' definitions being extracted in a worker thread."""
        """The open documents' pending index updates (after a pause in typing)."""
        self.change_ms: dict[str, float] = {}
        """Milliseconds spent on each document's changes since its last completion."""
        self.loop_probe = LoopProbe.from_env()
        self.reports: ReportStore | None = None
        """Failing tests from the workspace's test reports."""
        self.report_watcher: Watcher | None = None
        self.report_task: asyncio.Task[None] | None = None
        self.fix_log: deque[dict[str, Any]] = deque(maxlen=FIX_LOG_SIZE)
        """The latest resolved code actions: edit or error (for tests and benchmarks)."""
        self.log_handler = EditorLogHandler(self.window_log_message)
        self._engine_task: asyncio.Task[None] | None = None
        self._engine_loads = 0
        self._restart_task: asyncio.Task[None] | None = None
        self._restart_failures = 0
        self._ready_since = 0.0
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self._reporting = False
        self._exit_task: asyncio.Task[None] | None = None
        self._parent_watch: asyncio.Task[None] | None = None

    # transport ------------------------------------------------------------------------------

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve over stdin/stdout with the hardened loop (`rpc.serve`): every request gets
        an answer, what cannot be read included. Ends at end of input (the editor is gone)."""
        from pygls.io_ import StdinAsyncReader, StdoutWriter

        self._stop_event = threading.Event()
        source = stdin or sys.stdin.buffer
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def serve() -> None:
            assert self._stop_event is not None
            reader = await rpc.pipe_reader(
                source, lambda: StdinAsyncReader(source, self.thread_pool)
            )
            self.serving()
            try:
                await rpc.serve(reader, self.protocol, self._stop_event)
            finally:
                # The editor is gone or said exit: no engine process may outlive the server.
                await self.close("end of input")

        try:
            asyncio.run(serve())
        except BrokenPipeError:
            log.error("the editor's end of the pipe is gone; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    # settings -------------------------------------------------------------------------------

    def workspace_trusted(self) -> bool:
        """Whether the workspace's settings files may set security-sensitive keys."""
        return self.root is not None and (
            self.client_trusts_workspace or trust.is_trusted(self.root)
        )

    def settings_sources(self) -> list[SettingsSource]:
        """Every source in increasing precedence: the user's config file, the workspace's
        files (trusted or not), `--config`, initializationOptions, didChangeConfiguration."""
        sources: list[SettingsSource] = []
        user_file = trust.user_settings_file()
        if user_file.is_file():
            sources.append(source_from_toml_file(user_file))
        if self.root is not None:
            sources += sources_from_workspace(self.root, trusted=self.workspace_trusted())
        if self.config_file is not None:
            sources.append(source_from_toml_file(self.config_file))
        if self.init_options is not None:
            sources.append(source_from_json("initializationOptions", self.init_options))
        if self.client_settings is not None:
            sources.append(source_from_json("coderLsp", self.client_settings))
        return sources

    def reload_settings(self) -> None:
        """Recompute settings; each error is shown to the user, defaults stay in force."""
        sources = self.settings_sources()
        self.settings, errors = load_settings(sources)
        ignored = ignored_settings(sources)
        if ignored and self.root is not None:
            notice = trust.ignored_message(self.root, ignored)
            log.warning("%s", notice)
            if notice not in self.trust_notices:
                self.trust_notices.add(notice)
                self.show(notice, types.MessageType.Warning)
        self.reuse.cache.clear()  # suggestions made under other settings
        privacy = self.settings.privacy
        redactor_for(privacy.redact, privacy.patterns, privacy.allow)  # loads the catalog now
        set_level(self.settings.log_level)
        for error in errors:
            log.warning("settings: %s", error)
            self.show(f"coder-lsp settings: {error}", types.MessageType.Warning)

    def profile_name(self) -> str:
        return resolve_profile(self.cli_profile, self.settings, os.environ) or auto_profile()

    def record_completion(self, entry: dict[str, Any]) -> None:
        self.completion_log.append(entry)

    # editor feedback ------------------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def publish_state(self, state: EngineState) -> None:
        """A custom notification editors use for their status display."""
        self.protocol.notify(
            STATUS_NOTIFICATION,
            {
                "state": state.status.value,
                "reason": state.reason,
                "model": state.model,
                "profile": self.host.profile.name if self.host else None,
            },
        )

    def engine_state_changed(self, state: EngineState) -> None:
        """A running engine changed state: a remote endpoint went down or came back (the
        remote engine recovers by itself), or the embedded engine's process died (restarted
        here, with a growing pause between attempts)."""
        self.publish_state(state)
        if state.status is not EngineStatus.FAILED:
            return
        host = self.host
        if host is None or host.remote:
            self.show(f"coder-lsp: {state.reason}", types.MessageType.Warning)
            return
        if self._restart_task is not None and not self._restart_task.done():
            return
        now = time.monotonic()
        if now - self._ready_since > STABLE_S:
            self._restart_failures = 0  # it had run well: start the backoff over
        self._restart_failures += 1
        delay = min(RESTART_MAX_DELAY_S, 2.0 ** (self._restart_failures - 1))
        self.show(
            f"coder-lsp: the engine stopped ({state.reason}); restarting it in {delay:g} s",
            types.MessageType.Warning,
        )
        self._restart_task = asyncio.get_running_loop().create_task(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        log.info("restarting the engine (attempt %d)", self._restart_failures)
        await self.restart_engine()

    # engine ---------------------------------------------------------------------------------

    def start_engine(self) -> None:
        """Load the engine in the background; requests meanwhile get empty answers."""
        try:
            self.host = EngineHost.for_profile(self.profile_name(), self.settings)
        except ValueError as exc:
            self.show(f"coder-lsp: {exc}", types.MessageType.Error)
            return
        self.host.on_state = self.engine_state_changed
        sys.setswitchinterval(REMOTE_SWITCH_S if self.host.remote else EMBEDDED_SWITCH_S)
        self._engine_task = asyncio.get_running_loop().create_task(self._load_engine(self.host))

    async def _load_engine(self, host: EngineHost) -> None:
        loop = asyncio.get_running_loop()
        # Each load has its own token (`coder-lsp/engine`, then `coder-lsp/engine/2`, ...):
        # a progress token is not to be created twice.
        self._engine_loads += 1
        token = (
            PROGRESS_TOKEN if self._engine_loads == 1 else f"{PROGRESS_TOKEN}/{self._engine_loads}"
        )
        progress = await self._begin_progress(f"coder-lsp: loading {host.profile.name}", token)
        self.publish_state(EngineState(EngineStatus.STARTING, "loading", host.model))

        shown = [0]  # the percentage never goes back (a load has several phases)

        def report(message: str, fraction: float) -> None:
            if progress:
                shown[0] = max(shown[0], min(100, int(fraction * 100)))
                value = types.WorkDoneProgressReport(message=message, percentage=shown[0])
                loop.call_soon_threadsafe(self.work_done_progress.report, token, value)

        try:
            state = await host.start(report)
        except asyncio.CancelledError:  # a restart: the next load begins its own progress
            if progress:
                self.end_progress(token, "restarting")
            raise
        if progress:
            end = "ready" if state.status is EngineStatus.READY else f"failed: {state.reason}"
            self.end_progress(token, end)
        self.publish_state(state)
        if state.status is EngineStatus.READY:
            self._ready_since = time.monotonic()
            freeze_heap()
            log.info("engine ready: %s (%s)", host.profile.name, host.model)
            for warning in host.warnings:
                self.show(f"coder-lsp: {warning}", types.MessageType.Warning)
        else:
            self.show(
                f"coder-lsp: the {host.profile.name} engine failed to load: {state.reason}",
                types.MessageType.Error,
            )

    def end_progress(self, token: str, message: str | None = None) -> None:
        """End a progress and forget its token, so that it can be created again (pygls
        keeps every token it has seen, and refuses to create one twice)."""
        self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
        self.work_done_progress.tokens.pop(token, None)

    async def _begin_progress(self, title: str, token: str = PROGRESS_TOKEN) -> bool:
        caps = self.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return False
        try:
            await self.work_done_progress.create_async(token)
        except Exception:
            log.debug("client refused the progress token", exc_info=True)
            return False
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, percentage=0))
        return True

    # workspace ------------------------------------------------------------------------------

    def start_workspace(self) -> None:
        """Create the workspace model now; index the folders in the background."""
        roots = [self.root] if self.root is not None else []
        self.workspace_service = WorkspaceService(
            roots, self.settings, cache_root() / "index", trees=self.documents
        )
        asyncio.get_running_loop().create_task(self._index_workspace(self.workspace_service))

    async def _index_workspace(self, service: WorkspaceService) -> None:
        if not service.roots or not self.settings.workspace.index:
            return
        loop = asyncio.get_running_loop()
        progress = await self._begin_progress("coder-lsp: indexing", INDEX_PROGRESS_TOKEN)

        def report(done: int, total: int) -> None:
            if progress and total:
                value = types.WorkDoneProgressReport(
                    message=f"{done}/{total} files", percentage=min(100, done * 100 // total)
                )
                loop.call_soon_threadsafe(
                    self.work_done_progress.report, INDEX_PROGRESS_TOKEN, value
                )

        message = "index failed"
        try:
            stats = await service.start(report)
            if stats is not None:
                message = f"{stats.files} files, {stats.symbols} symbols"
                freeze_heap()
        except Exception:
            log.error("indexing failed", exc_info=True)
        if progress:
            self.end_progress(INDEX_PROGRESS_TOKEN, message)
        if service.index.cache_error:
            self.show(
                f"coder-lsp: index cache off ({service.index.cache_error}); "
                "the index is rebuilt on each start",
                types.MessageType.Warning,
            )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls shows unexpected errors in the editor (`window/showMessage`). Once the output
        is closed (after `exit`, a closed pipe) that message fails too, and pygls would report
        that failure in turn, down to the recursion limit: shown only while the server runs,
        and never from within a report."""
        if self._closed or self._reporting:
            return
        self._reporting = True
        try:
            super().report_server_error(error, source)
        finally:
            self._reporting = False

    async def restart_engine(self) -> None:
        await self.stop_engine()
        if not self._closed:
            self.start_engine()

    async def close(self, reason: str = "") -> None:
        """Stop everything the server runs: requests, generations, the index, the watchers,
        every engine process. For `shutdown`, the end of input and the editor's death; safe
        to call more than once."""
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.get_running_loop().create_task(self._close(reason))
        # A second caller (exit while shutdown still closes) waits for the same close; its
        # own cancellation leaves that close running.
        await asyncio.shield(self._closing)

    async def _close(self, reason: str) -> None:
        if reason:
            log.info("closing: %s", reason)
        if self._restart_task is not None:
            self._restart_task.cancel()
        for task in list(self.inflight.values()):
            task.cancel()
        self.reuse.streams.abort_all()
        if self.workspace_service is not None:
            self.workspace_service.stop()
        if self.report_watcher is not None:
            self.report_watcher.stop()
            self.report_watcher = None
        if self.loop_probe is not None:
            self.loop_probe.stop()
        for pending in self.index_updates.values():
            pending.cancel()
        self.index_updates.clear()
        self.documents.stop()
        await self.stop_engine()

    async def exit_now(self, reason: str) -> None:
        """Close everything, then end the process (a thread blocked reading stdin cannot be
        woken up any other way)."""
        log.warning("exiting: %s", reason)
        await self.close(reason)
        logging.shutdown()
        os._exit(0)

    def serving(self) -> None:
        """The loop runs: signals close the server cleanly, the lag probe starts (if on)."""
        self.exit_on_signals()
        if self.loop_probe is not None:
            self.loop_probe.start()

    def exit_on_signals(self) -> None:
        """SIGTERM, SIGHUP and SIGINT close the engine before the server exits (by default
        Python would exit at once and leave vLLM's processes running)."""
        loop = asyncio.get_running_loop()

        def received(sig: signal.Signals) -> None:
            self._exit_task = loop.create_task(self.exit_now(f"{sig.name} received"))

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):
                loop.add_signal_handler(sig, received, sig)

    def watch_parent(self, pid: int) -> None:
        """Exit when the editor's process is gone (its pipe may stay open in a child)."""

        async def watch() -> None:
            while not self._closed:
                await asyncio.sleep(PARENT_CHECK_S)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    await self.exit_now(f"the editor (process {pid}) is gone")
                except PermissionError:
                    pass  # alive, as another user

        self._parent_watch = asyncio.get_running_loop().create_task(watch())

    async def stop_engine(self) -> None:
        task, self._engine_task = self._engine_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        host, self.host = self.host, None
        if host is not None:
            await host.shutdown()
