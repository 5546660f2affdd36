"""Workspace trust: whose settings files may decide where code and credentials go.

A workspace's `pyproject.toml [tool.coder-lsp]` and `coder-lsp.toml` are the repository
author's words. Until the user trusts the workspace, they cannot set the security-sensitive
keys (`config.sensitive_keys`): a cloned repository cannot send its reader's code, or the
credential an environment variable holds, anywhere. Trust is the user's act: a directory in
the user's list (`coder-lsp trust DIR` adds one), or the editor's own decision
(`initializationOptions.workspaceTrusted`, which the VS Code extension sends from VS Code's
Workspace Trust). The user's own settings live in the user config file, trusted always.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import msgspec

CONFIG_ENV = "CODER_LSP_CONFIG_DIR"
TRUST_FILE = "trusted-workspaces.toml"
USER_SETTINGS = "config.toml"


class _TrustFile(msgspec.Struct):
    workspaces: list[str] = []


def config_dir() -> Path:
    """The user's coder-lsp configuration directory (`CODER_LSP_CONFIG_DIR` overrides)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("coder-lsp"))


def user_settings_file() -> Path:
    """The user's own settings (the same schema as `coder-lsp.toml`), trusted always."""
    return config_dir() / USER_SETTINGS


def trust_file() -> Path:
    return config_dir() / TRUST_FILE


def trusted_roots() -> list[Path]:
    """The workspaces the user trusts (each with everything below it)."""
    try:
        data = tomllib.loads(trust_file().read_text(encoding="utf-8"))
        listed = msgspec.convert(data, _TrustFile).workspaces
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError):
        return []
    return [Path(p) for p in listed]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def is_trusted(root: Path) -> bool:
    """Whether the user trusts `root` (it, or a directory above it, is in their list)."""
    real = _real(root)
    return any(real == t or real.is_relative_to(t) for t in map(_real, trusted_roots()))


def _write(roots: list[Path]) -> None:
    target = trust_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Workspaces whose settings files may set security-sensitive keys (coder-lsp trust).\n"
    ]
    lines.append("workspaces = [\n")
    lines += [f"  {msgspec.json.encode(str(r)).decode()},\n" for r in roots]
    lines.append("]\n")
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, target)


def add(root: Path) -> bool:
    """Trust `root`; False when it already was."""
    real = _real(root)
    roots = trusted_roots()
    if real in map(_real, roots):
        return False
    _write([*roots, real])
    return True


def remove(root: Path) -> bool:
    """Stop trusting `root`; False when it was not in the list."""
    real = _real(root)
    roots = trusted_roots()
    kept = [r for r in roots if _real(r) != real]
    if len(kept) == len(roots):
        return False
    _write(kept)
    return True


def ignored_message(root: Path, ignored: dict[str, list[str]]) -> str:
    """The one message for settings an untrusted workspace asked for."""
    keys = sorted({key for found in ignored.values() for key in found})
    files = ", ".join(ignored)
    return (
        f"coder-lsp: {files} in {root} set {', '.join(keys)}, which decide where your code "
        "and credentials go or what is loaded; they are ignored because you have not trusted "
        f"this workspace. To use them: `coder-lsp trust {root}` (or trust the workspace in "
        "your editor), then restart the server."
    )
