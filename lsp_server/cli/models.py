"""`coder-lsp models [--prepare NAME]`."""

from __future__ import annotations

import sys

from engine.profiles import PROFILES, auto_profile, download_model, get_profile
from lsp_server.cli.progress import stderr_progress


def run(prepare: str | None) -> int:
    if prepare is None:
        default = auto_profile()
        for p in PROFILES.values():
            mark = "*" if p.name == default else " "
            print(f"{mark} {p.name:<17} {p.description}")
            print(f"  {'':<17} completion: {p.completion_model}; edits: {p.edit_model}")
            print(f"  {'':<17} where: {p.where}")
        print("(* = the profile used when none is set)")
        return 0
    try:
        profile = get_profile(prepare)
    except ValueError as exc:
        print(f"coder-lsp models: {exc}", file=sys.stderr)
        return 2
    try:
        path = download_model(profile.completion_model, stderr_progress)
        if profile.edit_model != profile.completion_model:
            download_model(profile.edit_model, stderr_progress)
    except Exception as exc:
        print(f"coder-lsp models: cannot prepare {prepare}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
