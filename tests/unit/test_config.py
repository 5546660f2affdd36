"""Settings: defaults, spelling, merge order, error reporting, schema, profile resolution."""

from pathlib import Path
from typing import Any

import msgspec
import pytest

from lsp_server.config import (
    CompletionSettings,
    EngineSettings,
    PrivacySettings,
    ReviewSettings,
    Settings,
    SettingsSource,
    load_settings,
    resolve_profile,
    settings_json_schema,
    source_from_json,
    source_from_toml_file,
    sources_from_workspace,
)


def toml(data: dict[str, Any], name: str = "coder-lsp.toml") -> SettingsSource:
    return SettingsSource(name=name, data=data, style="toml")


def load_one(source: SettingsSource) -> tuple[Settings, list[str]]:
    return load_settings([source])


def test_defaults() -> None:
    settings, errors = load_settings([])
    assert errors == []
    assert settings == Settings()
    assert settings.profile is None
    assert settings.log_level == "info"
    assert settings.engine.backend == "embedded"
    assert settings.engine.api_key_env == "CODER_LSP_API_KEY"
    assert settings.engine.endpoints == []
    assert settings.completion.enabled is True
    assert settings.completion.max_tokens == 64
    assert settings.completion.prompt_tokens == 1536
    assert settings.completion.temperature == 0.0
    assert settings.completion.debounce_ms == 0
    assert settings.privacy.exclude == ["**/.env", "**/*.pem", "**/id_rsa*"]
    assert settings.review.required == []


def test_default_lists_are_not_shared() -> None:
    assert PrivacySettings().exclude is not PrivacySettings().exclude


@pytest.mark.parametrize(
    "struct",
    [Settings, EngineSettings, CompletionSettings, PrivacySettings, ReviewSettings],
    ids=lambda s: s.__name__,
)
def test_every_field_has_a_default_and_a_description(struct: type[msgspec.Struct]) -> None:
    struct()  # every field has a default
    schema = settings_json_schema()["$defs"][struct.__name__]
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{struct.__name__}.{name} has no description"


def test_toml_snake_case_and_json_camel_case_decode_alike() -> None:
    snake = {
        "profile": "tiny-moe",
        "log_level": "debug",
        "engine": {
            "backend": "remote",
            "endpoints": ["http://gpu-box:8000/v1"],
            "api_key_env": "MY_KEY",
            "max_model_len": 4096,
            "gpu_memory_utilization": 0.5,
            "tensor_parallel_size": 2,
            "dtype": "bfloat16",
            "kv_cache_dtype": "fp8_e4m3",
            "cpu_kv_cache_gib": 1,
        },
        "completion": {"max_tokens": 32, "prompt_tokens": 512, "debounce_ms": 75},
        "privacy": {"exclude": ["secrets/**"]},
        "review": {"required": ["src/payments/**"]},
    }
    camel = {
        "profile": "tiny-moe",
        "logLevel": "debug",
        "engine": {
            "backend": "remote",
            "endpoints": ["http://gpu-box:8000/v1"],
            "apiKeyEnv": "MY_KEY",
            "maxModelLen": 4096,
            "gpuMemoryUtilization": 0.5,
            "tensorParallelSize": 2,
            "dtype": "bfloat16",
            "kvCacheDtype": "fp8_e4m3",
            "cpuKvCacheGib": 1,
        },
        "completion": {"maxTokens": 32, "promptTokens": 512, "debounceMs": 75},
        "privacy": {"exclude": ["secrets/**"]},
        "review": {"required": ["src/payments/**"]},
    }
    from_toml, toml_errors = load_one(toml(snake))
    from_json, json_errors = load_one(source_from_json("initializationOptions", camel))
    assert toml_errors == json_errors == []
    assert from_toml == from_json
    assert from_toml.engine.cpu_kv_cache_gib == 1.0
    assert from_toml.engine.kv_cache_dtype == "fp8_e4m3"
    assert from_toml.completion.debounce_ms == 75


def test_toml_files_from_workspace(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n'
        '[tool.coder-lsp]\nprofile = "cpu-small"\n\n'
        "[tool.coder-lsp.completion]\nmax_tokens = 10\ntemperature = 0.2\n"
    )
    (tmp_path / "coder-lsp.toml").write_text("[completion]\nmax_tokens = 20\n")
    sources = sources_from_workspace(tmp_path, trusted=True)
    assert [s.name for s in sources] == ["pyproject.toml [tool.coder-lsp]", "coder-lsp.toml"]
    settings, errors = load_settings(sources)
    assert errors == []
    assert settings.profile == "cpu-small"
    assert settings.completion.max_tokens == 20
    assert settings.completion.temperature == 0.2
    # Untrusted (the default), the profile (what gets loaded) is not the workspace's to pick.
    untrusted, errors = load_settings(sources_from_workspace(tmp_path))
    assert errors == [] and untrusted.profile is None and untrusted.completion.max_tokens == 20


def test_workspace_without_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert sources_from_workspace(tmp_path) == []


def test_explicit_config_file(tmp_path: Path) -> None:
    path = tmp_path / "my.toml"
    path.write_text('log_level = "warning"\n[engine]\nbackend = "remote"\n')
    settings, errors = load_settings([source_from_toml_file(path)])
    assert errors == []
    assert settings.log_level == "warning"
    assert settings.engine.backend == "remote"


def test_explicit_pyproject_reads_tool_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.coder-lsp]\nlog_level = "error"\n')
    settings, errors = load_settings([source_from_toml_file(path)])
    assert errors == []
    assert settings.log_level == "error"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(None, "cannot read", id="missing"),
        pytest.param("completion = [", "invalid TOML", id="bad-toml"),
    ],
)
def test_unreadable_file_is_reported(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "coder-lsp.toml"
    if content is not None:
        path.write_text(content)
    settings, errors = load_settings([source_from_toml_file(path, name="coder-lsp.toml")])
    assert settings == Settings()
    assert len(errors) == 1
    assert errors[0].startswith("coder-lsp.toml: ")
    assert fragment in errors[0]


def test_merge_order() -> None:
    sources = [
        toml(
            {"profile": "tiny-moe", "log_level": "debug", "completion": {"max_tokens": 1}},
            name="pyproject.toml [tool.coder-lsp]",
        ),
        toml({"log_level": "warning", "completion": {"max_tokens": 2}}),
        source_from_json("initializationOptions", {"completion": {"maxTokens": 3}}),
        source_from_json("coderLsp", {"logLevel": "error"}),
    ]
    settings, errors = load_settings(sources)
    assert errors == []
    assert settings.profile == "tiny-moe"  # only in pyproject
    assert settings.completion.max_tokens == 3  # initializationOptions over the files
    assert settings.log_level == "error"  # didChangeConfiguration last


def test_nested_merge_keeps_other_keys() -> None:
    sources = [
        toml({"engine": {"backend": "remote", "endpoints": ["http://a/v1"], "dtype": "float16"}}),
        source_from_json("coderLsp", {"engine": {"endpoints": ["http://b/v1"]}}),
    ]
    settings, errors = load_settings(sources)
    assert errors == []
    assert settings.engine.backend == "remote"
    assert settings.engine.dtype == "float16"
    assert settings.engine.endpoints == ["http://b/v1"]  # lists replace, not extend


def test_json_null_resets_to_automatic() -> None:
    sources = [
        toml({"engine": {"max_model_len": 4096}}),
        source_from_json("coderLsp", {"engine": {"maxModelLen": None}}),
    ]
    settings, errors = load_settings(sources)
    assert errors == []
    assert settings.engine.max_model_len is None


def test_unknown_key_is_reported_and_rest_applies() -> None:
    source = source_from_json(
        "coderLsp", {"completion": {"maxTokns": 5, "temperature": 0.3}, "logLevel": "debug"}
    )
    settings, errors = load_one(source)
    assert errors == [
        "coderLsp: unknown setting 'completion.maxTokns' (did you mean 'completion.maxTokens'?)"
    ]
    assert settings.completion.temperature == 0.3
    assert settings.completion.max_tokens == 64
    assert settings.log_level == "debug"


def test_unknown_key_suggestion_uses_toml_spelling() -> None:
    settings, errors = load_one(toml({"engine": {"api_key_nev": "X", "backend": "remote"}}))
    assert errors == [
        "coder-lsp.toml: unknown setting 'engine.api_key_nev' (did you mean 'engine.api_key_env'?)"
    ]
    assert settings.engine.backend == "remote"


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    _, errors = load_one(toml({"review": {"zzz": 1}}))
    assert errors == ["coder-lsp.toml: unknown setting 'review.zzz'; known settings here: required"]


def test_unknown_top_level_table() -> None:
    settings, errors = load_one(toml({"nonsense": {"a": 1}, "profile": "cpu-small"}))
    assert len(errors) == 1
    assert "unknown setting 'nonsense'" in errors[0]
    assert settings.profile == "cpu-small"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            {"completion": {"maxTokens": "abc"}},
            "completion.maxTokens: expected an integer from 1 to 2048, got 'abc'",
            id="type",
        ),
        pytest.param(
            {"completion": {"maxTokens": 0}},
            "completion.maxTokens: expected an integer from 1 to 2048, got 0",
            id="range-low",
        ),
        pytest.param(
            {"completion": {"temperature": 2.5}},
            "completion.temperature: expected a number from 0 to 2, got 2.5",
            id="range-high-float",
        ),
        pytest.param(
            {"engine": {"gpuMemoryUtilization": 0}},
            "engine.gpuMemoryUtilization: expected a number > 0 and <= 1 (or null), got 0",
            id="exclusive-bound",
        ),
        pytest.param(
            {"engine": {"backend": "cloud"}},
            "engine.backend: expected one of 'embedded', 'remote', got 'cloud'",
            id="literal",
        ),
        pytest.param(
            {"profile": "huge"},
            "profile: expected one of 'cpu-small', 'deepseek-v2', 'deepseek-v2-lite', "
            "'tiny-moe' (or null), got 'huge'",
            id="profile",
        ),
        pytest.param(
            {"logLevel": "verbose"},
            "logLevel: expected one of 'debug', 'error', 'info', 'warning', got 'verbose'",
            id="log-level",
        ),
        pytest.param(
            {"completion": {"stop": ["\n", 3]}},
            'completion.stop: expected a list of strings, got ["\\n",3]',
            id="list-item",
        ),
        pytest.param(
            {"completion": {"enabled": "yes"}},
            "completion.enabled: expected true or false, got 'yes'",
            id="bool",
        ),
        pytest.param(
            {"privacy": ["**/.env"]},
            'privacy: expected a table of settings, got ["**/.env"]',
            id="table",
        ),
    ],
)
def test_bad_value_is_reported_by_name_and_default_kept(
    data: dict[str, Any], expected: str
) -> None:
    data = {**data, "review": {"required": ["src/**"]}}
    settings, errors = load_one(source_from_json("coderLsp", data))
    assert errors == [f"coderLsp: {expected}; ignoring it"]
    assert settings.review.required == ["src/**"]  # the rest of the source applies
    assert settings.completion == CompletionSettings()
    assert settings.engine == EngineSettings()
    assert settings.privacy == PrivacySettings()
    assert settings.profile is None
    assert settings.log_level == "info"


def test_bad_value_keeps_earlier_source() -> None:
    sources = [
        toml({"completion": {"max_tokens": 100}}, name="pyproject.toml [tool.coder-lsp]"),
        toml({"completion": {"max_tokens": 5000, "debounce_ms": 10}}),
    ]
    settings, errors = load_settings(sources)
    assert errors == [
        "coder-lsp.toml: completion.max_tokens: expected an integer from 1 to 2048, "
        "got 5000; ignoring it"
    ]
    assert settings.completion.max_tokens == 100
    assert settings.completion.debounce_ms == 10


def test_toml_errors_do_not_mention_null() -> None:
    _, errors = load_one(toml({"engine": {"tensor_parallel_size": 0}}))
    assert errors == [
        "coder-lsp.toml: engine.tensor_parallel_size: expected an integer >= 1, got 0; ignoring it"
    ]


def test_many_errors_in_one_source() -> None:
    data = {
        "completion": {"maxTokens": -1, "temperature": "hot", "foo": 1, "debounceMs": 5},
        "engine": {"dtype": "int4", "backend": "remote"},
        "bar": True,
    }
    settings, errors = load_one(source_from_json("coderLsp", data))
    assert len(errors) == 5
    assert all(e.startswith("coderLsp: ") for e in errors)
    assert settings.completion.debounce_ms == 5
    assert settings.engine.backend == "remote"


def test_snake_and_camel_given_twice_is_reported() -> None:
    settings, errors = load_one(toml({"completion": {"max_tokens": 1, "maxTokens": 2}}))
    assert len(errors) == 1
    assert "completion.maxTokens" in errors[0]
    assert "twice" in errors[0]
    assert settings.completion.max_tokens == 2


@pytest.mark.parametrize(
    ("obj", "expected_errors"),
    [
        pytest.param(None, 0, id="null"),
        pytest.param({}, 0, id="empty"),
        pytest.param([1, 2], 1, id="list"),
        pytest.param("x", 1, id="string"),
    ],
)
def test_json_source_shapes(obj: object, expected_errors: int) -> None:
    settings, errors = load_one(source_from_json("initializationOptions", obj))
    assert settings == Settings()
    assert len(errors) == expected_errors
    assert all(e.startswith("initializationOptions: ") for e in errors)


def test_json_schema_uses_camel_case_names() -> None:
    schema = settings_json_schema()
    defs = schema["$defs"]
    assert schema["$ref"] == "#/$defs/Settings"
    assert set(defs["Settings"]["properties"]) == {
        "profile",
        "engine",
        "completion",
        "workspace",
        "privacy",
        "review",
        "fixes",
        "tests",
        "logLevel",
    }
    assert {"maxTokens", "stop", "contextTokens"} <= set(defs["FixSettings"]["properties"])
    assert {"diagnostics", "reports", "logs"} == set(defs["ReportSettings"]["properties"])
    engine = defs["EngineSettings"]["properties"]
    assert {"apiKeyEnv", "maxModelLen", "gpuMemoryUtilization", "kvCacheDtype"} <= set(engine)
    completion = defs["CompletionSettings"]["properties"]
    assert completion["maxTokens"]["minimum"] == 1
    assert completion["maxTokens"]["maximum"] == 2048
    assert completion["maxTokens"]["default"] == 64
    assert defs["PrivacySettings"]["properties"]["exclude"]["default"] == [
        "**/.env",
        "**/*.pem",
        "**/id_rsa*",
    ]
    assert all(d["additionalProperties"] is False for d in defs.values())


@pytest.mark.parametrize(
    ("cli", "configured", "env", "expected"),
    [
        pytest.param("tiny-moe", "cpu-small", "deepseek-v2", "tiny-moe", id="cli-first"),
        pytest.param(None, "cpu-small", "deepseek-v2", "cpu-small", id="settings-second"),
        pytest.param(None, None, "deepseek-v2", "deepseek-v2", id="env-third"),
        pytest.param(None, None, None, None, id="auto"),
        pytest.param(None, None, "  ", None, id="blank-env-is-auto"),
    ],
)
def test_resolve_profile(
    cli: str | None, configured: str | None, env: str | None, expected: str | None
) -> None:
    settings = msgspec.convert({"profile": configured}, Settings)
    environ = {} if env is None else {"CODER_LSP_PROFILE": env}
    assert resolve_profile(cli, settings, environ) == expected
