"""Lifecycle: settings at initialize, engine loading after initialized, shutdown, changes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server.features import documents, test_results
from lsp_server.server import AUTH_TOKEN, WORKSPACE_TRUSTED, CoderLanguageServer

log = logging.getLogger(__name__)


def _root(params: types.InitializeParams) -> Path | None:
    uri = None
    if params.workspace_folders:
        uri = params.workspace_folders[0].uri
    elif params.root_uri:
        uri = params.root_uri
    path = to_fs_path(uri) if uri else params.root_path
    return Path(path) if path else None


def _file_rules(ls: CoderLanguageServer) -> tuple[Any, ...]:
    """What decides which files the workspace model holds: `workspace.*` and the privacy
    excludes (a change to either rebuilds it; unchanged files come from the index cache)."""
    return (ls.settings.workspace, tuple(ls.settings.privacy.exclude))


def _section(settings: Any) -> Any:
    """The `coderLsp` section of a didChangeConfiguration payload (or the payload itself)."""
    if isinstance(settings, dict) and "coderLsp" in settings:
        return settings["coderLsp"]
    return settings


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: CoderLanguageServer, params: types.InitializeParams) -> None:
        ls.root = _root(params)
        options = params.initialization_options
        if isinstance(options, dict):
            # Not settings: what the client says of the workspace (and the TCP token, checked
            # and removed by the transport before this point).
            options = dict(options)
            ls.client_trusts_workspace = options.pop(WORKSPACE_TRUSTED, None) is True
            options.pop(AUTH_TOKEN, None)
        ls.init_options = options
        ls.reload_settings()

    @server.feature(types.INITIALIZED)
    def initialized(ls: CoderLanguageServer, params: types.InitializedParams) -> None:
        import asyncio

        ls.log_handler.attach(asyncio.get_running_loop())
        logging.getLogger().addHandler(ls.log_handler)
        if ls.process_id is not None and ls.process_id > 0:
            ls.watch_parent(ls.process_id)
        ls.start_workspace()
        test_results.start(ls)
        ls.start_engine()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: CoderLanguageServer, params: None) -> None:
        # Received counts (pygls marks it only once this handler returns): requests from
        # now on are refused, and an `exit` sent before the answer ends with status 0.
        ls.protocol._shutdown = True
        test_results.stop(ls)
        await ls.close("shutdown")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CoderLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        settings = _section(params.settings)
        if settings is None:
            caps = ls.client_capabilities.workspace
            if caps and caps.configuration:
                items = [types.ConfigurationItem(section="coderLsp")]
                result = await ls.workspace_configuration_async(
                    types.ConfigurationParams(items=items)
                )
                settings = result[0] if result else None
        before = (ls.profile_name(), ls.settings.engine)
        reports_before = (ls.settings.tests, ls.settings.workspace.watch)
        files_before = _file_rules(ls)
        ls.client_settings = settings
        ls.reload_settings()
        if _file_rules(ls) != files_before and ls.workspace_service is not None:
            log.info("workspace settings changed; indexing again")
            ls.workspace_service.stop()
            ls.start_workspace()
            documents.hand_open_documents(ls)
        if (ls.settings.tests, ls.settings.workspace.watch) != reports_before:
            await test_results.restart(ls)
        if ls.host is not None:
            ls.host.settings = ls.settings
        if (ls.profile_name(), ls.settings.engine) != before:
            log.info("engine settings changed; restarting the engine")
            await ls.restart_engine()
