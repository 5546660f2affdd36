"""The LSP4IJ template in ``editors/jetbrains``: schema drift, structure, defaults, languages.

LSP4IJ publishes a JSON Schema only for ``clientSettings.json`` (a structural copy is kept in
``editors/jetbrains/schemas``); ``template.json`` is checked against what LSP4IJ's template
deserializer reads, as described in ``editors/jetbrains/schemas/README.md``. Instances are
validated by a small draft-07 validator for the keywords these schemas use (the test fails if a
schema uses another), and also by ``jsonschema`` where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from lsp_server.__main__ import _parser
from lsp_server.config import Settings, load_settings, source_from_json
from lsp_server.languages import EXTENSIONS
from lsp_server.workspace.languages import SUPPORTED

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "editors" / "jetbrains"
SCHEMAS_DIR = TEMPLATE_DIR / "schemas"
SECTION = "coderLsp"

# What LSP4IJ's template deserializers (ServerTemplateJsonDeserializer and
# LanguageServerTemplateDeserializer) read from template.json.
TEMPLATE_KEYS = {
    "id",
    "name",
    "url",
    "dev",
    "programArgs",
    "env",
    "workingDir",
    "expandConfiguration",
    "disablePromotionFor",
    "fileTypeMappings",
    "languageMappings",
}
OS_KEYS = {"default", "windows", "mac", "unix"}


def _load_generator() -> ModuleType:
    path = TEMPLATE_DIR / "generate.py"
    spec = importlib.util.spec_from_file_location("jetbrains_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def _json(name: str) -> Any:
    return json.loads((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


# Draft-07 keywords the small validator below enforces, and those it may ignore.
CHECKED = {"type", "enum", "anyOf", "properties", "additionalProperties", "items", "required"}
CHECKED |= {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern"}
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default"}
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _subschemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found.append(schema[key])
    return found


def _keywords(schema: dict[str, Any]) -> set[str]:
    """Every keyword used in ``schema`` and its subschemas."""
    used = set(schema)
    for sub in _subschemas(schema):
        used |= _keywords(sub)
    return used


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool):  # JSON booleans are not numbers
        return name == "boolean"
    return isinstance(value, TYPES[name])


def _violations(schema: dict[str, Any], value: Any, at: str = "$") -> list[str]:
    """Why ``value`` does not match ``schema`` (draft-07, the keywords in ``CHECKED``)."""
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, name) for name in names):
            return [f"{at}: {value!r} is not of type {schema['type']}"]
    out: list[str] = []
    if "enum" in schema and not any(
        type(value) is type(option) and value == option for option in schema["enum"]
    ):
        out.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if "anyOf" in schema and all(_violations(sub, value, at) for sub in schema["anyOf"]):
        out.append(f"{at}: {value!r} matches no alternative")
    if isinstance(value, int | float) and not isinstance(value, bool):
        bounds = {
            "minimum": value >= schema.get("minimum", value),
            "maximum": value <= schema.get("maximum", value),
            "exclusiveMinimum": "exclusiveMinimum" not in schema
            or value > schema["exclusiveMinimum"],
            "exclusiveMaximum": "exclusiveMaximum" not in schema
            or value < schema["exclusiveMaximum"],
        }
        out += [f"{at}: {value!r} breaks {name}" for name, ok in bounds.items() if not ok]
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(f"{at}: {value!r} does not match {schema['pattern']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        missing = [name for name in schema.get("required", []) if name not in value]
        out += [f"{at}: '{name}' is required" for name in missing]
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                out += _violations(props[name], item, f"{at}.{name}")
            elif extra is False:
                out.append(f"{at}: unknown property '{name}'")
            elif isinstance(extra, dict):
                out += _violations(extra, item, f"{at}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            out += _violations(schema["items"], item, f"{at}[{index}]")
    return out


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Violations found by the small validator; ``jsonschema``, if installed, must agree."""
    unknown = _keywords(schema) - CHECKED - ANNOTATIONS
    assert not unknown, f"schema uses keywords the test does not check: {sorted(unknown)}"
    errors = _violations(schema, instance)
    try:
        jsonschema: Any = importlib.import_module("jsonschema")
    except ImportError:
        return errors
    jsonschema.Draft7Validator.check_schema(schema)
    agrees = jsonschema.Draft7Validator(schema).is_valid(instance)
    assert agrees == (not errors), (errors, "jsonschema disagrees")
    return errors


def _lsp4ij_command(line: str) -> list[str]:
    """Split a command line as LSP4IJ's ``CommandUtils.createCommands`` does.

    Spaces separate arguments, double quotes group (and are dropped), empty parts are skipped.
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == " " and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _schema_defaults(node: dict[str, Any]) -> dict[str, Any]:
    """The object the schema's ``default`` values describe, nested objects included."""
    out: dict[str, Any] = {}
    for name, prop in node.get("properties", {}).items():
        if "default" in prop:
            out[name] = prop["default"]
        elif prop.get("type") == "object":
            out[name] = _schema_defaults(prop)
    return out


def _walk(node: Any) -> list[Any]:
    """``node`` and every value nested in it."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found.extend(_walk(child))
    return found


# --- (1) the committed settings.schema.json is the generated one ----------------------------


def test_settings_schema_is_generated() -> None:
    committed = (TEMPLATE_DIR / "settings.schema.json").read_text(encoding="utf-8")
    assert committed == generate.render(generate.build_schema()), (
        "settings.schema.json is stale: run .venv/bin/python editors/jetbrains/generate.py"
    )
    assert generate.main(["--check"]) == 0


def test_check_mode_fails_on_drift(tmp_path: Path) -> None:
    out = tmp_path / "settings.schema.json"
    assert generate.main(["--check", "--out", str(out)]) == 1  # missing
    assert generate.main(["--out", str(out)]) == 0
    assert generate.main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("coder-lsp", "coder_lsp"))
    assert generate.main(["--check", "--out", str(out)]) == 1


def test_schema_is_the_server_schema_inlined() -> None:
    schema = generate.build_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert list(schema["properties"]) == [SECTION]
    assert schema["additionalProperties"] is False
    assert not any(
        isinstance(node, dict) and ("$ref" in node or "$defs" in node) for node in _walk(schema)
    )
    section = schema["properties"][SECTION]
    wire_names = [field.encode_name for field in msgspec.structs.fields(Settings)]
    assert list(section["properties"]) == wire_names
    assert section["additionalProperties"] is False
    engine = section["properties"]["engine"]
    assert engine["type"] == "object" and "maxModelLen" in engine["properties"]
    assert engine["description"] == "How and where the model runs."


def test_inlining_keeps_field_descriptions_over_definitions() -> None:
    source = {
        "$ref": "#/$defs/A",
        "$defs": {
            "A": {
                "title": "A",
                "type": "object",
                "properties": {"b": {"description": "field", "$ref": "#/$defs/B"}},
                "required": [],
            },
            "B": {"title": "B", "description": "struct", "type": "object", "properties": {}},
        },
    }
    section = generate.build_schema(source)["properties"][SECTION]
    assert section == {
        "type": "object",
        "properties": {"b": {"description": "field", "type": "object", "properties": {}}},
    }
    with pytest.raises(ValueError, match="unsupported"):
        generate.build_schema({"$ref": "#/definitions/A"})


# --- (2) structure, against LSP4IJ's published schemas and its template reader --------------


def test_template_folder_has_the_files_lsp4ij_reads() -> None:
    for name in (
        "template.json",
        "settings.json",
        "settings.schema.json",
        "initializationOptions.json",
        "clientSettings.json",
    ):
        assert isinstance(_json(name), dict), name
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    assert "pip install 'coder-lsp[cpu]'" in readme
    assert "Import from custom template" in readme


def test_template_json_has_the_shape_lsp4ij_reads() -> None:
    template = _json("template.json")
    assert set(template) <= TEMPLATE_KEYS
    assert template["id"] == "coder-lsp"
    assert template["name"] == "coder-lsp"
    # Without it LSP4IJ shows its own documentation link, which leads nowhere for this server.
    assert template["url"] == ""
    args = template["programArgs"]  # LSP4IJ reads it unconditionally, as a map of strings
    assert isinstance(args, dict) and "default" in args and set(args) <= OS_KEYS
    assert all(isinstance(value, str) and value for value in args.values())
    mappings = template["fileTypeMappings"]
    assert isinstance(mappings, list) and mappings
    for mapping in mappings:
        assert set(mapping) == {"fileType", "languageId"}
        assert isinstance(mapping["languageId"], str)
        file_type = mapping["fileType"]
        assert set(file_type) <= {"name", "patterns"} and file_type
        patterns = file_type.get("patterns", [])
        assert isinstance(patterns, list)
        assert all(isinstance(p, str) and p.startswith("*.") for p in patterns)
    for mapping in template.get("languageMappings", []):
        assert set(mapping) == {"language", "languageId"}
        assert all(isinstance(value, str) for value in mapping.values())


@pytest.mark.parametrize("os_key", sorted(OS_KEYS))
def test_program_args_start_the_stdio_server(os_key: str) -> None:
    args = _json("template.json")["programArgs"]
    line = args.get(os_key, args["default"])  # LSP4IJ falls back to "default"
    argv = _lsp4ij_command(line)
    assert argv[0] == ("coder-lsp.exe" if os_key == "windows" else "coder-lsp")
    parsed = _parser().parse_args(argv[1:])
    assert parsed.command == "serve" and parsed.stdio and parsed.tcp is None


def test_client_settings_match_lsp4ij_schema() -> None:
    schema = json.loads((SCHEMAS_DIR / "clientSettings.schema.json").read_text(encoding="utf-8"))
    client = _json("clientSettings.json")
    assert _errors(schema, client) == []
    assert _errors(schema, {"inlineCompletion": {"enabled": True}}) != []  # schema is strict
    assert client["breadcrumbs"] == {"enabled": False}


def test_settings_files_match_the_generated_schema() -> None:
    schema = _json("settings.schema.json")
    settings = _json("settings.json")
    assert list(settings) == [SECTION]
    assert _errors(schema, settings) == []
    assert _errors(schema, {SECTION: _json("initializationOptions.json")}) == []
    good = {
        "engine": {"gpuMemoryUtilization": 0.9, "dtype": None, "attentionBackend": "CPU_MLA"},
        "profile": "cpu-small",
    }
    assert _errors(schema, {SECTION: good}) == []
    for bad in (
        {"completion": {"maxTokens": 0}},
        {"completion": {"enabled": 1}},
        {"engine": {"gpuMemoryUtilization": 0}},
        {"engine": {"gpuMemoryUtilization": 1.5}},
        {"engine": {"dtype": "int4"}},
        {"engine": {"attentionBackend": "CPU MLA; rm -rf"}},
        {"tests": {"reports": [1]}},
        {"bogus": 1},
    ):
        assert _errors(schema, {SECTION: bad}) != [], bad
    assert _errors(schema, {"coderlsp": {}}) != []


# --- (3) the server accepts every shipped default ------------------------------------------


def test_server_accepts_settings_json() -> None:
    section = _json("settings.json")[SECTION]
    settings, errors = load_settings([source_from_json("settings.json coderLsp", section)])
    assert errors == []
    assert settings == Settings()  # empty on purpose: workspace files keep their say


def test_server_accepts_initialization_options() -> None:
    options = _json("initializationOptions.json")
    settings, errors = load_settings([source_from_json("initializationOptions", options)])
    assert errors == []
    assert settings == Settings()


def test_schema_defaults_are_the_server_defaults() -> None:
    schema = _json("settings.schema.json")
    defaults = _schema_defaults(schema["properties"][SECTION])
    assert {"profile", "engine", "completion", "tests", "logLevel"} <= set(defaults)
    assert _errors(schema, {SECTION: defaults}) == []
    settings, errors = load_settings([source_from_json("schema defaults", defaults)])
    assert errors == []
    assert settings == Settings()


def test_server_and_schema_both_refuse_an_unknown_key() -> None:
    bad = {"completion": {"maxTokens": 32, "bogus": True}}
    settings, errors = load_settings([source_from_json("x", bad)])
    assert len(errors) == 1 and "bogus" in errors[0]
    assert settings.completion.max_tokens == 32
    assert _errors(_json("settings.schema.json"), {SECTION: bad}) != []


# --- (4) the mappings cover exactly the server's languages ----------------------------------


def test_language_mappings_cover_exactly_the_supported_ids() -> None:
    template = _json("template.json")
    ids = [mapping["languageId"] for mapping in template["fileTypeMappings"]]
    ids += [mapping["languageId"] for mapping in template.get("languageMappings", [])]
    assert len(ids) == len(set(ids))
    assert set(ids) == SUPPORTED
    assert {"python", "typescriptreact", "cpp", "rust"} <= set(ids)


def test_file_patterns_are_the_servers_extensions() -> None:
    for mapping in _json("template.json")["fileTypeMappings"]:
        language = mapping["languageId"]
        expected = {f"*{ext}" for ext, lang in EXTENSIONS.items() if lang == language}
        assert set(mapping["fileType"]["patterns"]) == expected, language
