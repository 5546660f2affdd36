"""The format of golden case files (see tests/golden/finalize/README.md)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path


def read_case(path: Path, sections: Collection[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Header ``key: value`` lines (a repeated key continues the value), then ``--- name``
    sections for the names in `sections`; a section's value is its lines joined by newlines
    (the newline ending its last line is not part of it)."""
    header: dict[str, str] = {}
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("--- ") and line[4:] in sections:
            current = found.setdefault(line[4:], [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            header[key] = f"{header[key]} {value}" if key in header else value
    if current is not None and current and current[-1] == "":
        current.pop()  # the file's final newline ends the last section's last line
    return header, {name: "\n".join(lines) for name, lines in found.items()}
