"""What never reaches a model (files matching `privacy.exclude`), and glob matching of files."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import pathspec


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
    """A predicate: may this file (a path or file URI) be sent to a model? (`privacy.exclude`
    globs, see `match_function`)."""
    excluded = match_function(globs, root)
    return lambda path: not excluded(path)
