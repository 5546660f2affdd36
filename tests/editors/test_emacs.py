"""The Emacs section of editors/README.md, run: its snippet in real Emacs with eglot (Debian
12's Emacs 28 and elpa-eglot, installed by `make test`), against the real server, the remote
backend on the test stub. The completion fallback must keep the word typed so far: eglot
filters candidates by it and applies the item's edit after inserting its label."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.stub_openai import StubOpenAI

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def readme_snippet() -> str:
    """The first elisp block of the README's Emacs section."""
    text = (ROOT / "editors" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Emacs") :]
    found = re.search(r"```elisp\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no elisp block in the Emacs section"
    return found.group(1)


def run_emacs(
    tmp_path: Path,
    script: str,
    workspace: Path,
    server_settings: str,
    files: dict[str, Path],
) -> tuple[dict[str, Any], str]:
    """Run `emacs/<script>` in batch Emacs with the README's snippet, the server's settings
    (TOML) in the user's own config file, and `files` (environment name: path); its results
    and Emacs' stderr."""
    emacs = shutil.which("emacs")
    assert emacs is not None, "no emacs: `make test` installs emacs-nox and elpa-eglot"
    snippet = tmp_path / "snippet.el"
    snippet.write_text(readme_snippet())
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text(server_settings)
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "CODER_LSP_CONFIG_DIR": str(config),
        "SNIPPET": str(snippet),
        "OUT": str(out),
        **{name: str(path) for name, path in files.items()},
    }
    proc = subprocess.run(
        [emacs, "--batch", "-l", str(HERE / "emacs" / script)],
        env=env,
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in result, (result, proc.stderr[-3000:])
    assert result["connected"] is True, proc.stderr[-3000:]
    return result, proc.stderr[-3000:]


def remote_settings(stub: StubOpenAI, extra: str = "") -> str:
    """The remote backend on `stub`, as the user's settings file says it."""
    return (
        f'[engine]\nbackend = "remote"\nendpoints = ["{stub.url}"]\ntokenizer = "endpoint"\n'
        + extra
    )


def test_the_readme_snippet_completes_in_emacs_with_eglot(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def total(values):\n    ret\n")
    with StubOpenAI(reply=lambda prompt: "urn sum(values)") as stub:
        settings = remote_settings(stub, "[completion]\ncache = false\ncandidates = 1\n")
        result, stderr = run_emacs(
            tmp_path, "complete.el", workspace, settings, {"FILE": workspace / "calc.py"}
        )
        asked = [r for r in stub.requests if r.path.endswith("/completions")]
    assert result["mode"] == "python-mode"
    assert asked, "the server never asked the model"
    assert result["text"] == "def total(values):\n    return sum(values)\n", (result, stderr)


CALC_BUG = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def test_failing_test_diagnostics_show_in_eglot_when_the_test_file_opens(tmp_path: Path) -> None:
    """A failing test's diagnostics, published when the server reads the report (before the
    test file is open), show in eglot's Flymake once the file is opened. eglot 1.9 keeps
    them either way; clients that drop them get them again on didOpen (that republish is
    tested in tests/lsp/test_editor_paths.py)."""
    workspace = tmp_path / "project"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "calc.py").write_text(CALC_BUG)
    (workspace / "conftest.py").write_text("")
    (workspace / "tests" / "test_calc.py").write_text(TEST_CALC)
    (workspace / ".git").mkdir()  # the project root for eglot
    report = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
         f"--junitxml={workspace / 'junit.xml'}"],
        cwd=workspace, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert report.returncode == 1, report.stdout
    with StubOpenAI(reply=lambda prompt: "") as stub:
        files = {"FIRST": workspace / "calc.py", "TEST_FILE": workspace / "tests" / "test_calc.py"}
        result, stderr = run_emacs(
            tmp_path, "diagnostics.el", workspace, remote_settings(stub), files
        )
    messages = [(text, line) for text, line in result["diagnostics"]]
    assert any("test_add failed" in text and line == 5 for text, line in messages), (
        result,
        stderr,
    )


def test_fix_with_ai_in_eglot_lists_in_time_and_applies_when_chosen(tmp_path: Path) -> None:
    """eglot 1.9 cannot resolve code actions and waits 10 s for a listing: with a model that
    takes 3 s, the listing comes in under 2 s, and the fix's command brings the edit into
    the buffer once computed (the user chose it)."""
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC_BUG)
    answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    with StubOpenAI(reply=lambda prompt: answer) as stub:
        stub.delay_s = 3.0
        settings = remote_settings(stub, "[workspace]\nindex = false\n")
        result, stderr = run_emacs(
            tmp_path, "actions.el", workspace, settings, {"FILE": workspace / "calc.py"}
        )
    assert "Fix with AI: add subtracts" in result["titles"], result
    assert result["listing_ms"] < 2000, result
    assert result["command"] == "coderLsp.applyCodeAction", result
    assert result["text"] == "def add(a, b):\n    return a + b\n", (result, stderr)
