"""Generate the extension's `contributes.configuration` from the server's settings schema.

The server's msgspec settings (`lsp_server.config.settings_json_schema()`) are the source of
truth. Each server setting becomes a VS Code setting `coderLsp.<section>.<key>` (or
`coderLsp.<key>` at the top level) with its type, default, description, enum and bounds, one
settings category per section. The extension's own settings (how to start the server, protocol
tracing) live under `coderLsp.server.*` and `coderLsp.trace.*`; the client never sends them to
the server, which rejects keys it does not know.

    .venv/bin/python editors/vscode/scripts/generate_settings.py          # rewrite package.json
    .venv/bin/python editors/vscode/scripts/generate_settings.py --check  # exit 1 on drift
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PACKAGE_JSON = Path(__file__).resolve().parent.parent / "package.json"
NAMESPACE = "coderLsp"
# Top-level names the extension keeps for itself; never sent to the server.
CLIENT_SECTIONS = ("server", "trace")
# JSON Schema keywords VS Code's settings understand, copied as they are.
COPIED = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "pattern",
    "minLength",
    "maxLength",
)
# Where a setting may be set. How the model runs is one choice per window (one server per
# window); what shapes completions and fixes may differ per folder.
WINDOW_SCOPED = ("profile", "logLevel", "engine")

CLIENT_PROPERTIES: dict[str, dict[str, Any]] = {
    f"{NAMESPACE}.server.path": {
        "type": "string",
        "default": "coder-lsp",
        "description": (
            "The program that starts the server: `coder-lsp` on PATH, or a path (for example "
            "a virtual environment's `bin/coder-lsp`, or its Python with `server.args` "
            "`-m lsp_server serve --stdio`). `${workspaceFolder}`, `${userHome}` and a "
            "leading `~` are expanded. Read by the extension only."
        ),
        "scope": "machine-overridable",
    },
    f"{NAMESPACE}.server.args": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["serve", "--stdio"],
        "description": (
            "Arguments of `server.path`. Add `--profile NAME` to pin a profile over the "
            "`profile` setting. Read by the extension only."
        ),
        "scope": "machine-overridable",
    },
    f"{NAMESPACE}.server.env": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": {},
        "description": (
            "Extra environment variables of the server process (for example "
            "`CODER_LSP_CACHE_DIR`, `CUDA_VISIBLE_DEVICES`). Read by the extension only."
        ),
        "scope": "machine-overridable",
    },
    f"{NAMESPACE}.trace.server": {
        "type": "string",
        "enum": ["off", "messages", "verbose"],
        "default": "off",
        "description": (
            "Log the LSP messages between VS Code and the server to the "
            "'coder-lsp (trace)' output. Read by the extension only."
        ),
        "scope": "window",
    },
}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    merged = dict(defs[name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _json_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        return "string"
    if kinds <= {bool}:
        return "boolean"
    if kinds <= {int}:
        return "integer"
    if kinds <= {int, float}:
        return "number"
    raise ValueError(f"enum of mixed types: {values!r}")


def _property(node: dict[str, Any], defs: dict[str, Any], scope: str) -> dict[str, Any]:
    """One VS Code setting from one schema property."""
    node = _resolve(node, defs)
    nullable = False
    if "anyOf" in node:
        options = [_resolve(option, defs) for option in node["anyOf"]]
        non_null = [option for option in options if option.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"unsupported anyOf: {node['anyOf']!r}")
        nullable = len(non_null) != len(options)
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **non_null[0]}
    out: dict[str, Any] = {}
    kind = node.get("type") or _json_type(node["enum"])
    out["type"] = [kind, "null"] if nullable else kind
    for key in COPIED:
        if key in node:
            out[key] = node[key]
    if nullable and "enum" in out:
        out["enum"] = [*out["enum"], None]
    if "default" in node:
        out["default"] = node["default"]
    elif nullable:
        out["default"] = None
    out["scope"] = scope
    return out


def _title(description: str) -> str:
    return f"coder-lsp: {description.rstrip('.')}"


def configuration(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """`contributes.configuration`: settings categories, the top level first."""
    defs = schema["$defs"]
    root = _resolve(schema, defs)
    clash = set(CLIENT_SECTIONS) & set(root["properties"])
    if clash:
        raise ValueError(f"server settings use names kept for the extension: {sorted(clash)}")
    top: dict[str, Any] = {}
    sections: list[dict[str, Any]] = []
    for name, node in root["properties"].items():
        scope = "window" if name in WINDOW_SCOPED else "resource"
        target = _resolve(node, defs)
        if target.get("type") == "object" and "properties" in target:
            properties = {
                f"{NAMESPACE}.{name}.{key}": _property(child, defs, scope)
                for key, child in target["properties"].items()
            }
            description = node.get("description") or target.get("description") or name
            sections.append({"title": _title(description), "properties": properties})
        else:
            top[f"{NAMESPACE}.{name}"] = _property(node, defs, scope)
    top.update(CLIENT_PROPERTIES)
    categories = [{"title": "coder-lsp", "properties": top}, *sections]
    for order, category in enumerate(categories):
        category["order"] = order
        for index, prop in enumerate(category["properties"].values()):
            prop["order"] = index
    return categories


def generate() -> list[dict[str, Any]]:
    from lsp_server.config import settings_json_schema

    return configuration(settings_json_schema())


def render(package: dict[str, Any]) -> str:
    """package.json as written: two-space indent, trailing newline (npm's own format)."""
    return json.dumps(package, indent=2, ensure_ascii=False) + "\n"


def updated(package: dict[str, Any]) -> dict[str, Any]:
    package = dict(package)
    contributes = dict(package.get("contributes", {}))
    contributes["configuration"] = generate()
    package["contributes"] = contributes
    return package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if package.json drifted")
    parser.add_argument("--package", type=Path, default=PACKAGE_JSON)
    args = parser.parse_args(argv)
    text = args.package.read_text(encoding="utf-8")
    package = json.loads(text)
    if args.check:
        if package == updated(package):
            return 0
        print(f"{args.package} is out of date: run {Path(__file__).name}", file=sys.stderr)
        return 1
    want = render(updated(package))
    if want == text:
        return 0
    args.package.write_text(want, encoding="utf-8")
    print(f"wrote {args.package}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    raise SystemExit(main())
