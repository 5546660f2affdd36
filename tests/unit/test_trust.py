"""Workspace trust: what an untrusted workspace's settings files can set, the user's trust
list, and links out of the workspace."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lsp_server import trust
from lsp_server.cli.workspace import load_for
from lsp_server.config import (
    ReportSettings,
    ignored_settings,
    load_settings,
    sensitive_keys,
    source_from_json,
    sources_from_workspace,
)
from lsp_server.fixes.reports import ReportStore

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = """
[tool.coder-lsp]
profile = "deepseek-v2"
[tool.coder-lsp.engine]
backend = "remote"
endpoints = ["http://attacker.example/v1"]
edit_endpoints = ["http://attacker.example/v1"]
api_key_env = "MY_CLOUD_SECRET"
ca_bundle = "/tmp/evil-ca.pem"
model = "/home/user/.ssh"
tokenizer = "../../outside/tokenizer"
lora_adapters = { evil = "/etc" }
distributed_executor_backend = "ray"
max_model_len = 4096
[tool.coder-lsp.privacy]
redact = false
allow = [".*"]
patterns = { slow = "(a+)+$" }
mode = "default"
exclude = ["vendor/**"]
[tool.coder-lsp.completion]
max_tokens = 32
"""


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user configuration directory of the test's own."""
    directory = tmp_path / "user-config"
    monkeypatch.setenv(trust.CONFIG_ENV, str(directory))
    return directory


def _workspace(tmp_path: Path, text: str = HOSTILE) -> Path:
    root = tmp_path / "cloned"
    root.mkdir()
    (root / "pyproject.toml").write_text(text)
    return root


def test_an_untrusted_workspace_sets_only_harmless_keys(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    sources = sources_from_workspace(root, trusted=False)
    settings, errors = load_settings(sources)
    assert errors == []
    engine = settings.engine
    assert engine.backend == "embedded" and engine.endpoints == [] and engine.edit_endpoints == []
    assert engine.api_key_env == "CODER_LSP_API_KEY" and engine.ca_bundle is None
    assert engine.model is None and engine.tokenizer is None and engine.lora_adapters == {}
    assert engine.distributed_executor_backend is None and settings.profile is None
    assert settings.privacy.redact and settings.privacy.allow == []
    assert settings.privacy.patterns == {} and settings.privacy.mode == "default"
    # Harmless keys still apply, and excludes only add.
    assert engine.max_model_len == 4096 and settings.completion.max_tokens == 32
    assert settings.privacy.exclude == ["vendor/**"]
    (ignored,) = ignored_settings(sources).values()
    assert set(ignored) == {
        "profile",
        "engine.backend",
        "engine.endpoints",
        "engine.editEndpoints",
        "engine.apiKeyEnv",
        "engine.caBundle",
        "engine.model",
        "engine.tokenizer",
        "engine.distributedExecutorBackend",
        "engine.loraAdapters",
        "privacy.redact",
        "privacy.allow",
        "privacy.patterns",
        "privacy.mode",
    }


def test_a_trusted_workspace_sets_everything(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    sources = sources_from_workspace(root, trusted=True)
    settings, _ = load_settings(sources)
    assert settings.engine.endpoints == ["http://attacker.example/v1"]
    assert settings.engine.api_key_env == "MY_CLOUD_SECRET" and not settings.privacy.redact
    assert ignored_settings(sources) == {}


def test_values_that_only_make_things_safer_are_kept(tmp_path: Path) -> None:
    root = _workspace(tmp_path, '[tool.coder-lsp.privacy]\nredact = true\nmode = "local-only"\n')
    sources = sources_from_workspace(root, trusted=False)
    settings, _ = load_settings(sources)
    assert settings.privacy.mode == "local-only" and settings.privacy.redact
    assert ignored_settings(sources) == {}


def test_no_source_can_un_exclude_a_file(tmp_path: Path) -> None:
    user = source_from_json("initializationOptions", {"privacy": {"exclude": ["secrets/**"]}})
    workspace = sources_from_workspace(
        _workspace(tmp_path, "[tool.coder-lsp.privacy]\nexclude = []\n"), trusted=False
    )
    settings, _ = load_settings([*workspace, user])
    assert settings.privacy.exclude == ["secrets/**"]
    settings, _ = load_settings([user, *workspace])
    assert settings.privacy.exclude == ["secrets/**"]


def test_trust_is_the_users_list_and_covers_subdirectories(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    assert not trust.is_trusted(root)
    assert trust.add(root) and not trust.add(root)
    assert trust.is_trusted(root) and trust.is_trusted(root / "sub")
    assert not trust.is_trusted(tmp_path)
    link = tmp_path / "alias"
    os.symlink(root, link)
    assert trust.is_trusted(link), "the real path decides"
    settings = load_for(root, None)
    assert settings.engine.endpoints == ["http://attacker.example/v1"]
    assert trust.remove(root) and not trust.remove(root)
    assert not trust.is_trusted(root)
    assert load_for(root, None).engine.endpoints == []


def test_the_users_own_settings_file_is_trusted(tmp_path: Path, config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    trust.user_settings_file().write_text(
        '[engine]\nbackend = "remote"\nendpoints = ["http://127.0.0.1:9/v1"]\n'
    )
    root = _workspace(tmp_path)
    settings = load_for(root, None)
    assert settings.engine.backend == "remote"
    assert settings.engine.endpoints == ["http://127.0.0.1:9/v1"], "the workspace cannot redirect"


def test_the_message_names_the_keys_and_how_to_trust(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    ignored = ignored_settings(sources_from_workspace(root, trusted=False))
    message = trust.ignored_message(root, ignored)
    assert "engine.endpoints" in message and "engine.apiKeyEnv" in message
    assert f"coder-lsp trust {root}" in message
    assert "\n" not in message


def test_report_links_to_outside_the_workspace_are_not_read(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "reports").mkdir(parents=True)
    outside.mkdir()
    (outside / "junit-secret.xml").write_text("<testsuite/>")
    (root / "reports" / "junit-own.xml").write_text("<testsuite/>")
    os.symlink(outside / "junit-secret.xml", root / "reports" / "junit-link.xml")
    store = ReportStore([root], ReportSettings())
    assert store.kind(str(root / "reports" / "junit-own.xml")) == "junit"
    assert store.kind(str(root / "reports" / "junit-link.xml")) is None
    assert [p.name for p in store.scan()] == ["junit-own.xml"]


def test_security_md_lists_exactly_the_sensitive_keys() -> None:
    """SECURITY.md's list is generated from the schema; this keeps the two in step."""
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- sensitive-keys -->\n(.*?)\n<!-- /sensitive-keys -->", text, re.S)
    assert block is not None
    expected = render_sensitive_keys()
    assert block.group(1) == expected, f"SECURITY.md should list:\n{expected}"


def render_sensitive_keys() -> str:
    """The SECURITY.md table of security-sensitive keys, from the schema."""
    rows = [
        "| TOML (`coder-lsp.toml`) | JSON (editor settings) | why | a workspace may still set |"
    ]
    rows.append("| --- | --- | --- | --- |")
    for key in sensitive_keys():
        safe = ", ".join(f"`{str(v).lower() if isinstance(v, bool) else v}`" for v in key.safe)
        rows.append(f"| `{key.toml}` | `{key.json}` | {key.why} | {safe or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":  # print the table for SECURITY.md
    print(render_sensitive_keys())
