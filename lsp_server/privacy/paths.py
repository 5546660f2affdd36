"""Which files never reach a model: secret-holding files always, `privacy.exclude` on top, and
glob matching of files."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import pathspec

NEVER_SENT = (
    "**/.env",
    "**/.env.*",
    "**/*.env",
    "**/.envrc",
    "**/*.pem",
    "**/*.key",
    "**/*.p12",
    "**/*.pfx",
    "**/*.jks",
    "**/*.keystore",
    "**/*.kdbx",
    "**/id_rsa*",
    "**/id_dsa*",
    "**/id_ecdsa*",
    "**/id_ed25519*",
    "**/.netrc",
    "**/_netrc",
    "**/.pgpass",
    "**/.npmrc",
    "**/.pypirc",
    "**/.git-credentials",
    "**/.htpasswd",
    "**/.aws/credentials",
    "**/.docker/config.json",
    "**/.kube/config",
)
"""Files that hold credentials by their nature: never read for context, never completed or
fixed, whatever `privacy.exclude` says (it adds to these, it cannot remove them)."""


@functools.lru_cache(maxsize=16)
def _spec(globs: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(globs)


def match_function(globs: Sequence[str], root: str | None) -> Callable[[str], bool]:
    """A predicate: does this file (a path or file URI) match one of `globs`?

    Globs use .gitignore syntax, relative to the workspace root (or the path's own directory
    structure when it is outside the root).
    """
    spec = _spec(tuple(globs))

    def matches(path: str) -> bool:
        if path.startswith("file://"):
            from pygls.uris import to_fs_path

            path = to_fs_path(path) or path
        rel = os.path.relpath(path, root) if root and path.startswith(root) else path
        return spec.match_file(rel.lstrip("/"))

    return matches


def allow_function(globs: Sequence[str], root: str | None) -> Callable[[str], bool]:
    """A predicate: may this file (a path or file URI) be sent to a model? Not when it is a
    secret-holding file (`NEVER_SENT`) or matches `privacy.exclude` (`globs`)."""
    excluded = match_function((*NEVER_SENT, *globs), root)
    return lambda path: not excluded(path)


def never_sent(path: str) -> bool:
    """Whether `path` is a secret-holding file by its name alone (`NEVER_SENT`)."""
    return match_function(NEVER_SENT, None)(path)
