"""Settings: one msgspec schema, loaded and merged from every source.

Sources, later wins, nested tables merged key by key (lists and scalars are replaced whole):
defaults, ``[tool.coder-lsp]`` in the workspace ``pyproject.toml``, ``coder-lsp.toml`` in the
workspace root, ``--config FILE``, ``initializationOptions`` and the ``coderLsp`` section of
``workspace/didChangeConfiguration``.

Key spelling: the Structs use ``rename="camel"``, so their wire names are the JSON (camelCase)
names. Before decoding, every table key of every source is normalised snake_case -> camelCase
(``max_tokens`` -> ``maxTokens``; camelCase keys pass unchanged), so TOML files use snake_case
and JSON uses camelCase, and either spelling is accepted in both. Error messages quote the key
as the user wrote it.

A bad key never discards a whole source: the offending key is dropped, reported and the source
decoded again, so the defaults (or earlier sources) stay in force for just that key.
"""

import difflib
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
import msgspec.inspect as mi

__all__ = [
    "PROFILE_NAMES",
    "CompletionSettings",
    "EngineSettings",
    "FixSettings",
    "PrivacySettings",
    "ReportSettings",
    "ReviewSettings",
    "SensitiveKey",
    "Settings",
    "SettingsSource",
    "WorkspaceSettings",
    "ignored_settings",
    "load_settings",
    "resolve_profile",
    "sensitive_keys",
    "settings_json_schema",
    "source_from_json",
    "source_from_toml_file",
    "sources_from_workspace",
    "strip_sensitive",
]

logger = logging.getLogger(__name__)

ProfileName = Literal["tiny-moe", "cpu-small", "deepseek-v2-lite", "deepseek-v2"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
PROFILE_ENV = "CODER_LSP_PROFILE"
TOOL_TABLE = "coder-lsp"
DEFAULT_EXCLUDE = ("**/.env", "**/*.pem", "**/id_rsa*")

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


def _doc(text: str) -> msgspec.Meta:
    """The one-line description of a field; it also lands in the JSON Schema."""
    return msgspec.Meta(description=text)


SENSITIVE_NOTE = " Only from your own settings or a trusted workspace."


def _sensitive(text: str, why: str, safe: tuple[object, ...] = ()) -> msgspec.Meta:
    """A security-sensitive field: an untrusted workspace's files cannot set it (but to one
    of the `safe` values, which only make things safer). `why`: where code goes, credentials
    and transport, what gets loaded, or privacy."""
    return msgspec.Meta(
        description=text + SENSITIVE_NOTE, extra={"sensitive": why, "safe": list(safe)}
    )


class EngineSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """How and where the model runs."""

    backend: Annotated[
        Literal["embedded", "remote"],
        _sensitive(
            "'embedded' runs vLLM in this process; 'remote' calls OpenAI-compatible servers.",
            "where code goes",
        ),
    ] = "embedded"
    model: Annotated[
        str | None,
        _sensitive(
            "Completion model path or name; overrides the profile's model.", "what gets loaded"
        ),
    ] = None
    edit_model: Annotated[
        str | None,
        _sensitive(
            "Fix and test-writing model path or name (an instruction model); overrides the "
            "profile's edit model.",
            "what gets loaded",
        ),
    ] = None
    endpoints: Annotated[
        list[str],
        _sensitive(
            "Remote backend: base URLs of vLLM OpenAI-compatible servers.", "where code goes"
        ),
    ] = []
    edit_endpoints: Annotated[
        list[str],
        _sensitive(
            "Remote backend: servers of the edit model, when it is served apart from the "
            "completion model; empty = the same endpoints.",
            "where code goes",
        ),
    ] = []
    api_key_env: Annotated[
        str,
        _sensitive(
            "Name of the environment variable holding the API key (never the key).",
            "credentials and transport",
        ),
    ] = "CODER_LSP_API_KEY"
    ca_bundle: Annotated[
        str | None,
        _sensitive(
            "Remote backend: a CA bundle (PEM) to trust for https endpoints.",
            "credentials and transport",
        ),
    ] = None
    connect_timeout_s: Annotated[
        float, msgspec.Meta(gt=0, description="Remote backend: seconds to connect.")
    ] = 5.0
    first_token_timeout_s: Annotated[
        float,
        msgspec.Meta(gt=0, description="Remote backend: seconds to wait for the first token."),
    ] = 60.0
    tokenizer: Annotated[
        str | None,
        _sensitive(
            "Remote backend: a local directory or hub id with the model's tokenizer files, "
            "for prompt budgeting, or 'endpoint' to ask the server's /tokenize; default: the "
            "server's model directory when it is on this machine, else the profile's model.",
            "what gets loaded",
        ),
    ] = None
    max_model_len: Annotated[
        PositiveInt | None, _doc("Context length of the engine; null = the profile's.")
    ] = None
    gpu_memory_utilization: Annotated[
        Fraction | None, _doc("Fraction of GPU memory vLLM may use (0 < x <= 1).")
    ] = None
    tensor_parallel_size: Annotated[
        PositiveInt | None, _doc("Number of GPUs to shard the model over.")
    ] = None
    dtype: Annotated[
        Literal["auto", "bfloat16", "float16", "float32"] | None,
        _doc(
            "Weight and activation dtype; null or 'auto' = chosen for the machine (on CPU: "
            "bfloat16 where the CPU computes it natively, else float32)."
        ),
    ] = None
    attention_backend: Annotated[
        Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_]+$")] | None,
        _doc(
            "vLLM attention backend by name; null = chosen for the machine and model (on "
            "CPU: AMX_MLA for MLA models on AMX CPUs in bfloat16, CPU_MLA for other MLA "
            "models, CPU_ATTN for the rest)."
        ),
    ] = None
    kv_cache_dtype: Annotated[
        Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None,
        _doc("KV cache dtype; null = the profile's."),
    ] = None
    cpu_kv_cache_gib: Annotated[
        NonNegativeFloat | None, _doc("CPU backend: KV cache size in GiB.")
    ] = None
    pipeline_parallel_size: Annotated[
        PositiveInt | None, _doc("Pipeline stages to split the model's layers over.")
    ] = None
    enable_expert_parallel: Annotated[
        bool | None, _doc("MoE models: place experts on different GPUs (expert parallelism).")
    ] = None
    distributed_executor_backend: Annotated[
        Literal["mp", "ray"] | None,
        _sensitive(
            "'mp' for one machine, 'ray' for several (a running Ray cluster); null = vLLM's.",
            "where code goes",
        ),
    ] = None
    quantization: Annotated[
        Literal["fp8", "awq", "gptq", "compressed-tensors"] | None,
        _doc("Weight quantization (fp8 needs a GPU); null = the checkpoint's own."),
    ] = None
    speculative_ngram_tokens: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=16)] | None,
        _doc(
            "Speculative decoding by n-gram prompt lookup: tokens proposed per step (1 to "
            "16); null = off."
        ),
    ] = None
    lora_adapters: Annotated[
        dict[str, str],
        _sensitive(
            "LoRA adapters to load: name -> local directory (embedded) or served name (remote).",
            "what gets loaded",
        ),
    ] = {}
    max_lora_rank: Annotated[
        PositiveInt | None, _doc("Largest LoRA rank among the adapters; null = vLLM's.")
    ] = None


class CompletionSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """Inline completion."""

    enabled: Annotated[bool, _doc("Offer inline completions.")] = True
    max_tokens: Annotated[
        int, msgspec.Meta(ge=1, le=2048, description="Most tokens one completion may have.")
    ] = 64
    prompt_tokens: Annotated[
        int, msgspec.Meta(ge=64, description="Token budget of the FIM prompt.")
    ] = 1536
    temperature: Annotated[
        float, msgspec.Meta(ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    ] = 0.0
    debounce_ms: Annotated[
        int, msgspec.Meta(ge=0, description="Wait this long after typing before asking.")
    ] = 0
    stop: Annotated[list[str], _doc("Extra stop sequences.")] = []
    context_tokens: Annotated[
        int,
        msgspec.Meta(ge=0, description="Tokens of repository context in the prompt; 0 = none."),
    ] = 384
    context_ms: Annotated[
        float, msgspec.Meta(ge=0, description="Time budget for gathering repository context.")
    ] = 15.0
    candidates: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=8,
            description="Samples asked for when completion is invoked explicitly; those that "
            "end where the code after the cursor resumes rank first, then by mean token "
            "log-probability.",
        ),
    ] = 3
    candidate_temperature: Annotated[
        float,
        msgspec.Meta(
            gt=0, le=2, description="Sampling temperature of the candidates (more than one)."
        ),
    ] = 0.6
    cache: Annotated[
        bool,
        _doc(
            "Reuse suggestions: an LRU of recent ones, typing through a shown suggestion, "
            "and following a generation still in flight."
        ),
    ] = True
    lora: Annotated[
        str | None,
        _doc(
            "The LoRA adapter (a name in engine.loraAdapters) for this workspace's "
            "completions; null = none."
        ),
    ] = None
    lora_by_language: Annotated[
        dict[str, str],
        _doc('The adapter per language id (e.g. {"python": "py-style"}); wins over lora.'),
    ] = {}
    postprocess: Annotated[
        bool,
        _doc(
            "Gate and post-process suggestions. Off shows the model's raw text, cut only by "
            "the token limit and the template's stop tokens (for comparisons)."
        ),
    ] = True


DEFAULT_INDEX_EXCLUDE = (
    "**/node_modules/**",
    "**/.venv/**",
    "**/venv/**",
    "**/__pycache__/**",
    "**/build/**",
    "**/dist/**",
    "**/target/**",
)


class WorkspaceSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """The workspace index."""

    index: Annotated[bool, _doc("Index the workspace's definitions.")] = True
    exclude: Annotated[
        list[str],
        msgspec.Meta(
            description="Globs not indexed (besides .gitignore rules).",
            extra_json_schema={"default": list(DEFAULT_INDEX_EXCLUDE)},
        ),
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_INDEX_EXCLUDE))
    max_file_kb: Annotated[
        int, msgspec.Meta(ge=1, description="Files larger than this are not indexed.")
    ] = 1024
    watch: Annotated[bool, _doc("Watch the disk for changes made outside the editor.")] = True


class PrivacySettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """What never reaches a model."""

    exclude: Annotated[
        list[str],
        msgspec.Meta(
            description="Globs of files never sent to a model (on top of the files that hold "
            "credentials by their nature: .env*, key files, .netrc, ...).",
            extra_json_schema={"default": list(DEFAULT_EXCLUDE)},
        ),
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    redact: Annotated[
        bool,
        _sensitive(
            "Replace secret values (keys, tokens, passwords, private keys) with placeholders "
            "in everything sent to a model.",
            "privacy",
            (True,),
        ),
    ] = True
    patterns: Annotated[
        dict[str, str],
        _sensitive(
            "Extra secret patterns to redact: kind -> regular expression (its first group is "
            "the secret, else the whole match).",
            "privacy",
        ),
    ] = {}
    allow: Annotated[
        list[str],
        _sensitive(
            "Regular expressions of values never redacted (a detected value matching one whole).",
            "privacy",
        ),
    ] = []
    mode: Annotated[
        Literal["default", "local-only"],
        _sensitive(
            "'local-only' refuses engine endpoints that are not on this machine.",
            "privacy",
            ("local-only",),
        ),
    ] = "default"


class FixSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """AI fixes and generated tests, offered as code actions."""

    enabled: Annotated[bool, _doc("Offer 'Fix with AI' and 'Generate unit tests' actions.")] = True
    max_tokens: Annotated[
        int, msgspec.Meta(ge=16, le=8192, description="Most tokens one fix or test file may have.")
    ] = 1024
    temperature: Annotated[
        float, msgspec.Meta(ge=0, le=2, description="Sampling temperature of fixes; 0 is greedy.")
    ] = 0.0
    stop: Annotated[list[str], _doc("Extra stop sequences of the edit model's answers.")] = []
    context_tokens: Annotated[
        int,
        msgspec.Meta(
            ge=0, description="Tokens of definitions the fixed code uses, shown to the model."
        ),
    ] = 512
    max_region_lines: Annotated[
        int,
        msgspec.Meta(
            ge=5,
            description="Largest function or class sent whole; a larger one is cut to the "
            "lines around the problem.",
        ),
    ] = 200


DEFAULT_TEST_REPORTS = ("**/junit*.xml", "**/TEST-*.xml", "**/test-results/**/*.xml")


class ReportSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """Failing tests shown as diagnostics, read from test reports the test runner writes."""

    diagnostics: Annotated[bool, _doc("Publish failing tests as diagnostics.")] = True
    reports: Annotated[
        list[str],
        msgspec.Meta(
            description="Globs (relative to the workspace root) of JUnit XML reports: pytest "
            "--junitxml, Maven Surefire, Gradle, go-junit-report.",
            extra_json_schema={"default": list(DEFAULT_TEST_REPORTS)},
        ),
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_TEST_REPORTS))
    logs: Annotated[
        list[str],
        _doc(
            "Globs of plain test logs (Python tracebacks, Java stack traces, Go panics, "
            "gtest failures)."
        ),
    ] = []


class ReviewSettings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """Fixes that always need the user's confirmation."""

    required: Annotated[
        list[str], _doc("Globs of files where a fix always needs the user's confirmation.")
    ] = []


class Settings(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, frozen=True
):
    """coder-lsp settings."""

    profile: Annotated[
        ProfileName | None,
        _sensitive("Named profile (model, template, engine); null = auto.", "what gets loaded"),
    ] = None
    engine: Annotated[EngineSettings, _doc("How and where the model runs.")] = msgspec.field(
        default_factory=EngineSettings
    )
    completion: Annotated[CompletionSettings, _doc("Inline completion.")] = msgspec.field(
        default_factory=CompletionSettings
    )
    workspace: Annotated[WorkspaceSettings, _doc("The workspace index.")] = msgspec.field(
        default_factory=WorkspaceSettings
    )
    privacy: Annotated[PrivacySettings, _doc("What never reaches a model.")] = msgspec.field(
        default_factory=PrivacySettings
    )
    review: Annotated[ReviewSettings, _doc("Fixes that need confirmation.")] = msgspec.field(
        default_factory=ReviewSettings
    )
    fixes: Annotated[FixSettings, _doc("AI fixes and generated tests.")] = msgspec.field(
        default_factory=FixSettings
    )
    tests: Annotated[ReportSettings, _doc("Failing tests as diagnostics.")] = msgspec.field(
        default_factory=ReportSettings
    )
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], _doc("Server log level.")
    ] = "info"


class SettingsSource(msgspec.Struct, frozen=True, kw_only=True):
    """One place settings come from, not yet validated."""

    name: str
    """Shown in messages, e.g. ``pyproject.toml [tool.coder-lsp]``."""
    data: dict[str, Any] = {}
    """The raw table, keys as the user wrote them."""
    style: Literal["toml", "json"] = "json"
    """Key spelling used when suggesting names: snake_case for TOML, camelCase for JSON."""
    error: str | None = None
    """Why the source could not be read at all (then ``data`` is empty)."""
    trusted: bool = True
    """The user's own (or a trusted workspace's): it may set security-sensitive keys. An
    untrusted workspace's files may not (see `sensitive_keys`); theirs are ignored."""


# --- security-sensitive keys ---------------------------------------------------------------


class SensitiveKey(msgspec.Struct, frozen=True):
    """A setting an untrusted workspace's files cannot set (`_sensitive` fields)."""

    path: tuple[str, ...]
    """camelCase names from the top, e.g. ("engine", "apiKeyEnv")."""
    why: str
    safe: tuple[object, ...] = ()
    """Values a workspace may still set: they only make things safer."""

    @property
    def json(self) -> str:
        return ".".join(self.path)

    @property
    def toml(self) -> str:
        return ".".join(_snake(name) for name in self.path)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def sensitive_keys() -> list[SensitiveKey]:
    """Every security-sensitive setting, in schema order (read from the schema's marks)."""
    found: list[SensitiveKey] = []

    def walk(struct: mi.StructType, path: tuple[str, ...]) -> None:
        for field in struct.fields:
            meta = field.type if isinstance(field.type, mi.Metadata) else None
            extra = meta.extra if meta is not None and meta.extra else {}
            inner = _unwrap(field.type)
            here = (*path, field.encode_name)
            if "sensitive" in extra:
                found.append(SensitiveKey(here, extra["sensitive"], tuple(extra.get("safe", ()))))
            elif isinstance(inner, mi.StructType):
                walk(inner, here)

    root = mi.type_info(Settings)
    assert isinstance(root, mi.StructType)
    walk(root, ())
    return found


def strip_sensitive(data: dict[str, Any]) -> list[str]:
    """Remove the security-sensitive keys from a source's table (camelCase keys) in place,
    but for values that only make things safer; the removed keys, dotted."""
    removed: list[str] = []
    for key in sensitive_keys():
        parent: Any = data
        for name in key.path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or key.path[-1] not in parent:
            continue
        if key.safe and parent[key.path[-1]] in key.safe:
            continue
        del parent[key.path[-1]]
        removed.append(key.json)
    return removed


def ignored_settings(sources: list[SettingsSource]) -> dict[str, list[str]]:
    """For each untrusted source, the security-sensitive keys it sets that are ignored."""
    ignored: dict[str, list[str]] = {}
    for source in sources:
        if source.trusted or source.error is not None:
            continue
        removed = strip_sensitive(_normalise(source.data, (), []))
        if removed:
            ignored[source.name] = removed
    return ignored


# --- loading -------------------------------------------------------------------------------


def load_settings(sources: list[SettingsSource]) -> tuple[Settings, list[str]]:
    """Validate each source, merge them in order over the defaults; return settings and errors.

    Every error message starts with the source's name. Bad keys are dropped; the rest of their
    source still applies.
    """
    errors: list[str] = []
    merged: dict[str, Any] = {}
    for source in sources:
        if source.error is not None:
            errors.append(f"{source.name}: {source.error}")
            continue
        clean, source_errors = _validate_source(source)
        errors.extend(f"{source.name}: {message}" for message in source_errors)
        _deep_merge(merged, clean)
    try:
        settings = msgspec.convert(merged, Settings)
    except msgspec.ValidationError as exc:  # each part was valid alone; should not happen
        logger.error("merged settings invalid, using defaults: %s", exc)
        errors.append(f"merged settings: {exc}; using the defaults")
        settings = Settings()
    for message in errors:
        logger.debug("settings: %s", message)
    return settings, errors


def sources_from_workspace(root: Path, *, trusted: bool = False) -> list[SettingsSource]:
    """The workspace's sources in merge order: ``pyproject.toml``, then ``coder-lsp.toml``.

    They are the repository author's words: unless the user trusts the workspace, they cannot
    set security-sensitive keys (where code goes, which credential, what gets loaded, less
    privacy); those are ignored (`ignored_settings` says which)."""
    sources: list[SettingsSource] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        source = source_from_toml_file(pyproject, name=f"pyproject.toml [tool.{TOOL_TABLE}]")
        if source.error is not None or source.data:
            sources.append(msgspec.structs.replace(source, trusted=trusted))
    own = root / f"{TOOL_TABLE}.toml"
    if own.is_file():
        sources.append(
            msgspec.structs.replace(source_from_toml_file(own, name=own.name), trusted=trusted)
        )
    return sources


def source_from_toml_file(path: Path, *, name: str | None = None) -> SettingsSource:
    """A TOML settings file; for a file named ``pyproject.toml`` its ``[tool.coder-lsp]``."""
    is_pyproject = path.name == "pyproject.toml"
    if name is None:
        name = f"{path} [tool.{TOOL_TABLE}]" if is_pyproject else str(path)
    try:
        with path.open("rb") as file:
            data: dict[str, Any] = tomllib.load(file)
    except OSError as exc:
        return SettingsSource(name=name, style="toml", error=f"cannot read: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        return SettingsSource(name=name, style="toml", error=f"invalid TOML: {exc}")
    if is_pyproject:
        tool = data.get("tool", {})
        table = tool.get(TOOL_TABLE, {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            return SettingsSource(name=name, style="toml", error="expected a table")
        data = table
    return SettingsSource(name=name, data=data, style="toml")


def source_from_json(name: str, obj: object) -> SettingsSource:
    """A JSON object (``initializationOptions`` or the ``coderLsp`` section); null is empty."""
    if obj is None:
        return SettingsSource(name=name)
    if not isinstance(obj, dict) or not all(isinstance(key, str) for key in obj):
        return SettingsSource(name=name, error=f"expected an object, got {_show(obj)}; ignoring it")
    return SettingsSource(name=name, data=obj)


def settings_json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Settings` (camelCase names), for editor configuration."""
    schema: dict[str, Any] = msgspec.json.schema(Settings)
    return schema


def resolve_profile(
    cli_profile: str | None, settings: Settings, env: Mapping[str, str] | None = None
) -> str | None:
    """Profile by precedence: CLI flag, settings, ``CODER_LSP_PROFILE``; None means auto."""
    if cli_profile:
        return cli_profile
    if settings.profile is not None:
        return settings.profile
    from_env = (os.environ if env is None else env).get(PROFILE_ENV, "").strip()
    return from_env or None


# --- validation ----------------------------------------------------------------------------

_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>.*)`$", re.DOTALL)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _camel(key: str) -> str:
    """``max_tokens`` -> ``maxTokens``; a key without underscores is unchanged."""
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _normalise(
    table: Mapping[str, Any], path: tuple[str, ...], errors: list[str]
) -> dict[str, Any]:
    """Copy of ``table`` with every table key in camelCase (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        camel = _camel(key)
        if camel in out:
            errors.append(f"'{_dotted((*path, key))}' is given twice (snake_case and camelCase)")
        out[camel] = _normalise(value, (*path, key), errors) if isinstance(value, dict) else value
    return out


def _validate_source(source: SettingsSource) -> tuple[dict[str, Any], list[str]]:
    """The source's valid part (camelCase keys) and messages for what was dropped."""
    errors: list[str] = []
    data = _normalise(source.data, (), errors)
    if not source.trusted:
        strip_sensitive(data)
    _drop_bad_expressions(data, errors)
    for _ in range(_count_keys(data) + 1):
        try:
            msgspec.convert(data, Settings)
        except msgspec.ValidationError as exc:
            dropped = _drop_offender(str(exc), data, source, errors)
            if not dropped:
                errors.append(f"{exc}; ignoring this source")
                return {}, errors
        else:
            return data, errors
    errors.append("too many errors; ignoring this source")
    return {}, errors


def _drop_bad_expressions(data: dict[str, Any], errors: list[str]) -> None:
    """Remove regular expressions of `privacy.patterns` / `privacy.allow` that do not compile."""
    privacy = data.get("privacy")
    if not isinstance(privacy, dict):
        return
    patterns = privacy.get("patterns")
    if isinstance(patterns, dict):
        for name, source in list(patterns.items()):
            problem = _regex_problem(source)
            if problem:
                del patterns[name]
                errors.append(f"privacy.patterns.{name}: {problem}; ignoring it")
    allow = privacy.get("allow")
    if isinstance(allow, list):
        kept = []
        for source in allow:
            problem = _regex_problem(source)
            if problem:
                errors.append(f"privacy.allow: {_show(source)}: {problem}; ignoring it")
            else:
                kept.append(source)
        privacy["allow"] = kept


def _regex_problem(source: object) -> str | None:
    if not isinstance(source, str):
        return None  # the type check reports it
    try:
        re.compile(source)
    except re.error as exc:
        return f"not a regular expression ({exc})"
    return None


def _drop_offender(
    message: str, data: dict[str, Any], source: SettingsSource, errors: list[str]
) -> bool:
    """Remove the key that ``message`` (a msgspec ValidationError) blames and record why."""
    match = _AT.match(message)
    if match is None:  # pragma: no cover - the pattern matches any text
        return False
    text, at = match["message"], match["path"] or "$"
    keys = [name for name, index in _SEGMENT.findall(at[1:]) if not index] if at != "$" else []
    unknown = _UNKNOWN.match(text)
    if unknown:
        keys.append(unknown["field"])
    if not keys:
        return False
    parent = data
    for key in keys[:-1]:
        child = parent.get(key)
        if not isinstance(child, dict):
            return False
        parent = child
    if keys[-1] not in parent:
        return False
    value = parent.pop(keys[-1])
    original = _original_keys(source.data, keys)
    shown = _dotted(original)
    if unknown:
        errors.append(f"unknown setting '{shown}'{_suggest(keys, original, source.style)}")
    else:
        expected = _describe(_field_type(keys), nullable=source.style == "json")
        errors.append(f"{shown}: expected {expected}, got {_show(value)}; ignoring it")
    return True


def _struct_at(keys: list[str]) -> mi.StructType | None:
    """The settings table reached by following camelCase ``keys`` from :class:`Settings`."""
    node: mi.Type = mi.type_info(Settings)
    for key in keys:
        node = _unwrap(node)
        if not isinstance(node, mi.StructType):
            return None
        field = next((f for f in node.fields if f.encode_name == key), None)
        if field is None:
            return None
        node = field.type
    node = _unwrap(node)
    return node if isinstance(node, mi.StructType) else None


def _field_type(keys: list[str]) -> mi.Type | None:
    """The declared type of the field at camelCase ``keys``."""
    table = _struct_at(keys[:-1])
    if table is None:
        return None
    field = next((f for f in table.fields if f.encode_name == keys[-1]), None)
    return None if field is None else _unwrap(field.type)


def _suggest(keys: list[str], shown: list[str], style: str) -> str:
    """' (did you mean ...?)' with the full dotted name, or the known keys of that table."""
    table = _struct_at(keys[:-1])
    if table is None:
        return ""
    names = {f.encode_name: (f.name if style == "toml" else f.encode_name) for f in table.fields}
    close = difflib.get_close_matches(_camel(keys[-1]), list(names), n=1)
    if close:
        return f" (did you mean '{_dotted([*shown[:-1], names[close[0]]])}'?)"
    return f"; known settings here: {', '.join(sorted(names.values()))}"


def _unwrap(node: mi.Type) -> mi.Type:
    while isinstance(node, mi.Metadata):
        node = node.type
    return node


def _describe(node: mi.Type | None, *, nullable: bool = True) -> str:
    """Accepted values of a type, in words; ``nullable=False`` for TOML, which has no null."""
    node = None if node is None else _unwrap(node)
    if isinstance(node, mi.UnionType):
        parts = [_describe(t) for t in node.types if not isinstance(t, mi.NoneType)]
        null = " (or null)" if node.includes_none and nullable else ""
        return " or ".join(parts) + null
    if isinstance(node, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in node.values)
    if isinstance(node, mi.BoolType):
        return "true or false"
    if isinstance(node, mi.IntType | mi.FloatType):
        noun = "an integer" if isinstance(node, mi.IntType) else "a number"
        return noun + _bounds(node.ge, node.gt, node.le, node.lt)
    if isinstance(node, mi.StrType):
        return "a string"
    if isinstance(node, mi.ListType):
        item = _unwrap(node.item_type)
        return "a list of strings" if isinstance(item, mi.StrType) else "a list"
    if isinstance(node, mi.StructType):
        return "a table of settings"
    return "a valid value"


def _bounds(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    if ge is not None and le is not None:
        return f" from {ge} to {le}"
    low = f" >= {ge}" if ge is not None else f" > {gt}" if gt is not None else ""
    high = f" <= {le}" if le is not None else f" < {lt}" if lt is not None else ""
    return low + (" and" if low and high else "") + high


def _original_keys(raw: Mapping[str, Any], keys: list[str]) -> list[str]:
    """``keys`` (camelCase) spelled as they appear in the source's raw table."""
    out: list[str] = []
    node: object = raw
    for key in keys:
        if isinstance(node, Mapping):
            original = next((k for k in reversed(list(node)) if _camel(k) == key), key)
            node = node.get(original)
        else:
            original, node = key, None
        out.append(original)
    return out


def _dotted(keys: tuple[str, ...] | list[str]) -> str:
    return ".".join(keys)


def _show(value: object) -> str:
    """A short rendering of a user's value: strings quoted, the rest as JSON."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = msgspec.json.encode(value).decode()
        except (TypeError, msgspec.EncodeError):
            text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count_keys(table: Mapping[str, Any]) -> int:
    return sum(1 + (_count_keys(v) if isinstance(v, dict) else 0) for v in table.values())


_UNION_LISTS = {("privacy", "exclude")}
"""Lists every source adds to instead of replacing: no source can un-exclude a file."""


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
    """Merge ``new`` over ``into`` in place: tables key by key, `_UNION_LISTS` joined,
    anything else replaced."""
    for key, value in new.items():
        old = into.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            _deep_merge(old, value, (*path, key))
        elif (*path, key) in _UNION_LISTS and isinstance(old, list) and isinstance(value, list):
            into[key] = [*old, *(v for v in value if v not in old)]
        else:
            into[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
