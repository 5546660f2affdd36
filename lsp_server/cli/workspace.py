"""What the file commands share: settings for a file's workspace, and its index."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from engine.profiles import auto_profile, cache_root
from lsp_server import trust
from lsp_server.cli.output import err
from lsp_server.config import (
    Settings,
    SettingsSource,
    ignored_settings,
    load_settings,
    resolve_profile,
    source_from_toml_file,
    sources_from_workspace,
)
from lsp_server.engine_host import EngineHost
from lsp_server.workspace.service import WorkspaceService

ENGINE_ENV = "CODER_LSP_ENGINE"
"""The URL of a running `coder-lsp engine` for `complete` and `fix` (like `--engine`)."""


def offset_of(text: str, line: int, column: int) -> int:
    """Offset of a 1-based line and column (columns count characters)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise ValueError(f"line {line} is outside the file (1..{len(lines)})")
    if not 1 <= column <= len(lines[line - 1].rstrip("\r")) + 1:
        raise ValueError(f"column {column} is outside line {line}")
    return sum(len(s) + 1 for s in lines[: line - 1]) + column - 1


def read_location(path: Path, line: int, column: int, command: str) -> tuple[str, int] | None:
    """The file's text and the offset of `line`:`column`, or None after printing why not."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, offset_of(text, line, column)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        err(f"coder-lsp {command}: {exc}")
        return None


def settings_for(path: Path, workspace: Path | None, config: Path | None) -> tuple[Path, Settings]:
    """The workspace root for `path` (given, else the current directory, else the file's
    folder) and its settings; setting errors are printed to stderr."""
    path = path.resolve()
    root = (workspace or Path.cwd()).resolve()
    if not path.is_relative_to(root):
        root = path.parent
    return root, load_for(root, config)


def user_sources() -> list[SettingsSource]:
    """The user's own settings file, when there is one."""
    user_file = trust.user_settings_file()
    return [source_from_toml_file(user_file)] if user_file.is_file() else []


def load_for(root: Path, config: Path | None) -> Settings:
    """Settings for a command run in workspace `root`: the user's file, the workspace's files
    (their security-sensitive keys only when the workspace is trusted), `--config`. Errors
    and ignored keys are printed to stderr."""
    sources = [
        *user_sources(),
        *sources_from_workspace(root, trusted=trust.is_trusted(root)),
    ]
    if config is not None:
        sources.append(source_from_toml_file(config))
    settings, errors = load_settings(sources)
    for error in errors:
        err(f"coder-lsp: settings: {error}")
    ignored = ignored_settings(sources)
    if ignored:
        err(trust.ignored_message(root, ignored))
    return settings


def indexed_workspace(root: Path, settings: Settings, command: str) -> WorkspaceService:
    """The workspace with its index built or refreshed now (no file watching)."""
    service = WorkspaceService([root], settings, cache_root() / "index")
    if settings.workspace.index:
        stats = service.index.build()
        err(
            f"coder-lsp {command}: indexed {stats.files} files, {stats.symbols} symbols "
            f"({stats.parsed} parsed) in {stats.seconds:.1f} s",
        )
    return service


def host_for(profile: str | None, settings: Settings, command: str) -> EngineHost | None:
    """The engine host of the profile in force, or None after printing why there is none."""
    name = resolve_profile(profile, settings) or auto_profile()
    try:
        return EngineHost.for_profile(name, settings)
    except ValueError as exc:
        err(f"coder-lsp {command}: {exc}")
        return None


def use_engine(settings: Settings, url: str | None) -> Settings:
    """`settings` with the remote backend on `url` (a running `coder-lsp engine` or `vllm
    serve`); unchanged without one. Given by the user on the command line or in the
    environment, so it is trusted like the user's own settings."""
    if not url:
        return settings
    engine = msgspec.structs.replace(settings.engine, backend="remote", endpoints=[url])
    return msgspec.structs.replace(settings, engine=engine)


def engine_url(given: str | None) -> str | None:
    """`--engine`, else `CODER_LSP_ENGINE`, else None (load an engine in this process)."""
    return given or os.environ.get(ENGINE_ENV) or None
