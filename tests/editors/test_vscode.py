"""The VS Code extension (editors/vscode): its settings against the server's schema, and an end
to end session in real VS Code (code-server) in headless Chromium against the real server.

`make test` builds the extension (`editors/vscode/coder-lsp.vsix`) and installs what the end to
end test needs (`make vscode-e2e-deps`: Chromium, Node 24, code-server, puppeteer-core) before
pytest runs; without them the test fails and says what to run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from lsp_server.config import Settings, load_settings, settings_json_schema, source_from_json
from tests.conftest import CACHE

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
PACKAGE_JSON = EXTENSION / "package.json"
GENERATOR = EXTENSION / "scripts" / "generate_settings.py"
VSIX = EXTENSION / "coder-lsp.vsix"
E2E = Path(__file__).resolve().parent / "vscode"
DRIVER = E2E / "e2e.mjs"
NODE24 = E2E / "node24" / "node_modules" / ".bin" / "node"
CODE_SERVER = E2E / "node_modules" / "code-server" / "out" / "node" / "entry.js"
CHROMIUM = Path(os.environ.get("CODER_LSP_CHROMIUM", "/usr/bin/chromium"))
SERVER_ARGS = ["-m", "lsp_server", "serve", "--stdio", "--profile", "tiny-moe"]
SERVER_ENV = ("CODER_LSP_CACHE_DIR", "HF_HUB_OFFLINE", "VLLM_CPU_KVCACHE_SPACE")
CLIENT_SECTIONS = ("server", "trace")
# The whole end to end session: code-server start, engine load (~30-60 s), typing, a failed
# engine. Each wait inside the driver has its own, smaller limit.
E2E_TIMEOUT_S = 360
TAIL = 4000


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_settings", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    return data


def _contributed() -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = {}
    for category in _package()["contributes"]["configuration"]:
        properties.update(category["properties"])
    return properties


def _server_keys_from_schema() -> set[str]:
    """`section.key` names of the server's settings, read straight from the JSON Schema."""
    schema = settings_json_schema()
    defs = schema["$defs"]
    root = defs[schema["$ref"].rsplit("/", 1)[-1]]
    keys: set[str] = set()
    for name, node in root["properties"].items():
        ref = node.get("$ref")
        if ref is None:
            keys.add(name)
        else:
            keys.update(f"{name}.{key}" for key in defs[ref.rsplit("/", 1)[-1]]["properties"])
    return keys


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


# --- settings: package.json mirrors the server's schema -------------------------------------


def test_package_json_settings_match_the_server_schema() -> None:
    """Fails when the server's settings changed and package.json was not regenerated."""
    want = _generator().generate()
    got = _package()["contributes"]["configuration"]
    assert got == want, (
        "editors/vscode/package.json is out of date with lsp_server.config: run "
        "`.venv/bin/python editors/vscode/scripts/generate_settings.py`"
    )


def test_every_server_setting_is_contributed_under_its_camel_case_name() -> None:
    contributed = _contributed()
    server = {
        name.removeprefix("coderLsp.")
        for name in contributed
        if name.removeprefix("coderLsp.").split(".")[0] not in CLIENT_SECTIONS
    }
    assert server == _server_keys_from_schema()
    assert all(name.startswith("coderLsp.") for name in contributed)
    assert contributed["coderLsp.completion.maxTokens"]["type"] == "integer"
    assert contributed["coderLsp.completion.maxTokens"]["default"] == 64
    assert contributed["coderLsp.completion.maxTokens"]["maximum"] == 2048
    profiles = contributed["coderLsp.profile"]["enum"]
    assert {"tiny-moe", "cpu-small", "deepseek-v2-lite", "deepseek-v2", None} <= set(profiles)
    for name, prop in contributed.items():
        assert prop.get("scope") in {"window", "resource", "machine-overridable"}, name
        assert prop.get("description"), name
        assert "type" in prop and "default" in prop, name


def test_contributed_defaults_are_the_server_defaults() -> None:
    """Sending every contributed server setting at its default changes nothing on the server."""
    defaults = {
        name.removeprefix("coderLsp."): prop["default"]
        for name, prop in _contributed().items()
        if name.removeprefix("coderLsp.").split(".")[0] not in CLIENT_SECTIONS
    }
    settings, errors = load_settings([source_from_json("coderLsp", _nest(defaults))])
    assert errors == []
    assert settings == Settings()


def test_extension_only_settings_are_kept_from_the_server() -> None:
    """The server rejects the extension's own keys, so the client must never send them."""
    client_only = {"server": {"path": "coder-lsp"}, "trace": {"server": "off"}}
    _, errors = load_settings([source_from_json("coderLsp", client_only)])
    assert len(errors) == 2 and all("unknown" in error for error in errors)
    clash = set(CLIENT_SECTIONS) & set(settings_json_schema()["$defs"]["Settings"]["properties"])
    assert not clash, "the server took a name the extension keeps for itself"


def test_generator_check_mode_reports_drift(tmp_path: Path) -> None:
    gen = _generator()
    stale = _package()
    stale["contributes"]["configuration"][0]["properties"].pop("coderLsp.profile")
    path = tmp_path / "package.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    assert gen.main(["--check", "--package", str(path)]) == 1
    assert gen.main(["--package", str(path)]) == 0
    assert gen.main(["--check", "--package", str(path)]) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == _package()


# --- end to end in code-server ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """End a process started in its own session and everything it started (server, vLLM)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tail(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-TAIL:]
    except OSError:
        return ""


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _require_tools() -> None:
    missing = [
        str(path)
        for path in (VSIX, NODE24, CODE_SERVER, DRIVER.parent / "node_modules" / "puppeteer-core")
        if not path.exists()
    ]
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    assert not missing, f"missing {missing}: run `make vscode vscode-e2e-deps`"


def test_vscode_end_to_end(tmp_path: Path) -> None:
    """Ghost text in VS Code from the real server (tiny-moe), accepted with Tab and saved; the
    status bar shows the engine loading with progress, ready, and a failed engine's reason."""
    _require_tools()
    workspace = tmp_path / "ws"
    user = tmp_path / "user"
    extensions = tmp_path / "extensions"
    artifacts = tmp_path / "artifacts"
    for folder in (workspace / ".vscode", user / "User", extensions, artifacts):
        folder.mkdir(parents=True)
    initial = "import os\n\n\ndef main():\n    return os.getcwd()\n\n\n"
    (workspace / "main.py").write_text(initial, encoding="utf-8")
    editor = {
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.inlineSuggest.enabled": True,
        "editor.acceptSuggestionOnEnter": "off",
        "files.autoSave": "off",
    }
    # Random weights: the raw text, not the post-processed one (which drops most of it).
    workspace_settings = {
        **editor,
        "coderLsp.completion.postprocess": False,
        "coderLsp.completion.maxTokens": 8,
    }
    (workspace / ".vscode" / "settings.json").write_text(json.dumps(workspace_settings, indent=2))
    env = {
        **os.environ,
        "CODER_LSP_CACHE_DIR": str(CACHE),
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    # How to start the server is a machine setting ("machine-overridable"): in a remote window,
    # and code-server is one, it is read from the remote machine's settings, not the user's.
    machine_settings = {
        "coderLsp.server.path": sys.executable,
        "coderLsp.server.args": SERVER_ARGS,
        "coderLsp.server.env": {key: env[key] for key in SERVER_ENV},
    }
    (user / "Machine").mkdir()
    (user / "Machine" / "settings.json").write_text(json.dumps(machine_settings, indent=2))
    user_settings = {
        "coderLsp.logLevel": "debug",
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "extensions.ignoreRecommendations": True,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "chat.disableAIFeatures": True,
        "window.commandCenter": False,
        **editor,
    }
    (user / "User" / "settings.json").write_text(json.dumps(user_settings, indent=2))
    config_file = tmp_path / "code-server.yaml"
    config_file.write_text("auth: none\ncert: false\n")
    env["EXTENSIONS_GALLERY"] = "{}"  # no extension marketplace: nothing to fetch from outside
    env["HOME"] = str(tmp_path / "home")  # code-server and Chromium keep their state here
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / ".local" / "share")
    code_server = [
        str(NODE24),
        str(CODE_SERVER),
        "--config",
        str(config_file),
        "--user-data-dir",
        str(user),
        "--extensions-dir",
        str(extensions),
    ]
    install = subprocess.run(
        [*code_server, "--install-extension", str(VSIX)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = [p.name for p in extensions.iterdir()]
    assert any(name.startswith("coder-lsp.coder-lsp-") for name in installed), install.stdout

    port = _free_port()
    server_log = tmp_path / "code-server.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [
                *code_server,
                "--bind-addr",
                f"127.0.0.1:{port}",
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--ignore-last-opened",
                str(workspace),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    driver: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"code-server exited:\n{_tail(server_log)}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, f"code-server not up:\n{_tail(server_log)}"
                time.sleep(0.5)
        driver_config = {
            "url": f"http://127.0.0.1:{port}/?folder={workspace}",
            "chromium": str(CHROMIUM),
            "workspace": str(workspace),
            "file": "main.py",
            "initialText": initial,
            "typed": "result = ",
            "badModel": "/nonexistent/model",
            "readyTimeoutMs": 240_000,
            "failTimeoutMs": 120_000,
            "artifacts": str(artifacts),
            "userDir": str(user),
        }
        config_path = tmp_path / "driver.json"
        config_path.write_text(json.dumps(driver_config))
        driver = subprocess.Popen(
            [str(NODE24), str(DRIVER), str(config_path)],
            cwd=E2E,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = driver.communicate(timeout=E2E_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop_group(driver, 10)
            stdout, stderr = driver.communicate()
            raise AssertionError(
                f"the driver ran past {E2E_TIMEOUT_S} s\n{stderr[-TAIL:]}\n"
                f"code-server log:\n{_tail(server_log)}"
            ) from None
        lines = stdout.strip().splitlines()
        assert driver.returncode == 0 and lines, f"driver failed:\n{stdout}\n{stderr[-TAIL:]}"
        result = json.loads(lines[-1])
        (artifacts / "result.json").write_text(json.dumps(result, indent=2))
    finally:
        if driver is not None:
            _stop_group(driver, 10)
        _stop_group(server, 30)

    steps = "\n".join(result["steps"])
    statuses = result["statusLog"]
    shown = "\n".join(statuses)
    context = (
        f"\nsteps:\n{steps}\nstatus bar:\n{shown}\nscreenshots: {artifacts}\n"
        f"code-server log:\n{_tail(server_log)}"
    )
    assert result["error"] is None, result["error"] + context
    # Loading with a percentage from $/progress, then ready, in that order.
    loading = [i for i, s in enumerate(statuses) if re.search(r"coder-lsp: loading \d+%", s)]
    ready = [i for i, s in enumerate(statuses) if "coder-lsp: ready" in s]
    assert loading and ready and loading[0] < ready[0], context
    assert any(re.search(r"loading (?:[1-9]\d?)%", s) for s in statuses), context
    # The ghost text was accepted into the document and saved after what was typed.
    ghost = result["ghostText"]
    saved = result["fileAfterSave"]
    assert ghost and _squash(ghost), context
    assert saved.startswith(initial + "result = "), context
    assert _squash(saved).startswith(_squash(initial + "result = ") + _squash(ghost)), context
    # The commands wrote the user's settings; the status bar shows completions off.
    assert "completions off" in result["toggled"]["label"], context
    assert result["profileSetting"] == "cpu-small", context
    # A failed engine: the status bar item and a notification say so, with the reason.
    assert result["failedText"].endswith("coder-lsp: failed"), context
    match = re.match(r"coder-lsp: the tiny-moe engine failed: (.+)", result["failedLabel"])
    assert match and match.group(1).strip(), context
    assert any("failed to load" in text for text in result["notifications"]), context
    assert match.group(1).strip()[:40] in result["failedHover"], context
    # The server never saw a key it does not know (the extension's own settings stay home).
    assert not [n for n in result["allNotifications"] if "settings:" in n], context
