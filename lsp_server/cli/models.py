"""`coder-lsp models [--prepare NAME]`."""

from __future__ import annotations

from engine.profiles import PROFILES, auto_profile, download_model, get_profile
from lsp_server.cli.output import err, out, stderr_progress


def run(prepare: str | None) -> int:
    if prepare is None:
        default = auto_profile()
        for p in PROFILES.values():
            mark = "*" if p.name == default else " "
            out(f"{mark} {p.name:<17} {p.description}")
            out(f"  {'':<17} completion: {p.completion_model}; edits: {p.edit_model}")
            out(f"  {'':<17} where: {p.where}")
        out("(* = the profile used when none is set)")
        return 0
    try:
        profile = get_profile(prepare)
    except ValueError as exc:
        err(f"coder-lsp models: {exc}")
        return 2
    try:
        path = download_model(profile.completion_model, stderr_progress)
        if profile.edit_model != profile.completion_model:
            download_model(profile.edit_model, stderr_progress)
    except Exception as exc:
        err(f"coder-lsp models: cannot prepare {prepare}: {exc}")
        return 1
    out(path)
    return 0
