"""`coder-lsp trust [DIR]`: let a workspace's own settings files set security-sensitive keys.

Without it, a workspace's `pyproject.toml [tool.coder-lsp]` and `coder-lsp.toml` cannot
decide where code goes, which credential is sent, what gets loaded, or weaken privacy (see
SECURITY.md). The list lives in the user's configuration directory.
"""

from __future__ import annotations

from pathlib import Path

from lsp_server import trust
from lsp_server.cli.output import err, out


def run(directory: Path | None, *, revoke: bool, show: bool) -> int:
    if show:
        for root in trust.trusted_roots():
            out(str(root))
        return 0
    target = (directory or Path.cwd()).expanduser()
    if not target.is_dir():
        err(f"coder-lsp trust: {target} is not a directory")
        return 2
    target = target.resolve()
    if revoke:
        changed = trust.remove(target)
        out(f"{'no longer trusted' if changed else 'was not trusted'}: {target}")
        return 0
    changed = trust.add(target)
    out(f"{'trusted' if changed else 'already trusted'}: {target}")
    if changed:
        err(
            "coder-lsp trust: its settings files may now choose engine endpoints, credentials "
            f"and models ({trust.trust_file()}); restart the server to apply them"
        )
    return 0
