"""`coder-lsp engine`: keep the profile's model loaded, as a `vllm serve` on this machine.

`complete` and `fix` load an engine of their own on each call (half a minute or more). With
`coder-lsp engine` running in another shell, they take `--engine URL` (or `CODER_LSP_ENGINE`)
and answer in seconds; an editor's server can use it too (`engine.backend = "remote"`). The
model, dtype and attention backend are what the embedded engine would run here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType

import httpx

from engine.machine import (
    CpuFeatures,
    EngineConfigError,
    EnginePlan,
    cpu_features,
    model_uses_mla,
    plan_engine,
)
from engine.profiles import (
    Profile,
    auto_profile,
    check_engine_options,
    get_profile,
    gpu_count,
    has_cuda_gpu,
    prepare_model,
)
from engine.vllm_engine import engine_args, serve_command
from lsp_server.cli.output import err, stderr_progress
from lsp_server.cli.workspace import ENGINE_ENV, load_for
from lsp_server.config import Settings, resolve_profile
from lsp_server.engine_host import engine_options
from lsp_server.transport import is_loopback

START_TIMEOUT_S = 900.0
STOP_GRACE_S = 30.0


def run(profile: str | None, config: Path | None, host: str, port: int) -> int:
    """Serve until interrupted; the exit status is 2 for settings that cannot start."""
    if not is_loopback(host):
        err(
            f"coder-lsp engine: {host} is not a loopback address; for a shared deployment run "
            "`vllm serve` behind your own access control (docs/deploy.md)"
        )
        return 2
    settings = load_for(Path.cwd(), config)
    name = resolve_profile(profile, settings) or auto_profile()
    try:
        chosen = get_profile(name)
    except ValueError as exc:
        err(f"coder-lsp engine: {exc}")
        return 2
    model = settings.engine.model or chosen.completion_model
    cpu = None if has_cuda_gpu() else cpu_features()
    try:
        plan = engine_plan(chosen, settings, cpu)
    except EngineConfigError as exc:
        err(f"coder-lsp engine: {exc}")
        return 2
    path = prepare_model(model, stderr_progress)
    port = port or _free_port(host)
    served = model.removeprefix("builtin:")
    debug = os.environ.get("CODER_LSP_LOG_LEVEL", "").lower() == "debug"
    command, extra_env = engine_command(
        chosen, settings, plan, path, cpu=cpu is not None, host=host, port=port, debug=debug
    )
    env = {**os.environ, **extra_env}
    if "VLLM_CPU_KVCACHE_SPACE" in os.environ:  # the user's own choice stands
        env["VLLM_CPU_KVCACHE_SPACE"] = os.environ["VLLM_CPU_KVCACHE_SPACE"]
    env.pop("VLLM_LOGGING_CONFIG_PATH", None)  # vLLM's own logging, not the server's quiet one
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/v1"
    err(f"coder-lsp engine: starting {name} ({served}; {plan.reason or 'vLLM defaults'})")
    return _serve(command, env, url, name)


def engine_plan(profile: Profile, settings: Settings, cpu: CpuFeatures | None) -> EnginePlan:
    """The dtype and attention backend the embedded engine would run with on this machine
    (`cpu` None: a GPU); EngineConfigError, one line, for settings that cannot start."""
    options = engine_options(profile, settings)
    model = settings.engine.model or profile.completion_model
    mla = model_uses_mla(model)
    problems = check_engine_options(options, gpus=gpu_count(), mla=mla)
    if problems:
        raise EngineConfigError("; ".join(problems))
    return plan_engine(options.dtype, options.attention_backend, cpu=cpu, mla=mla)


def engine_command(
    profile: Profile,
    settings: Settings,
    plan: EnginePlan,
    model_path: str,
    *,
    cpu: bool,
    host: str,
    port: int,
    debug: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """`vllm serve` for the profile as the embedded engine would run it, and the environment
    it needs: vLLM's own lines from warnings up on stderr, a line per request at debug."""
    options = engine_options(profile, settings)
    model = settings.engine.model or profile.completion_model
    command = serve_command(
        engine_args(model_path, options, cpu=cpu, plan=plan),
        served_name=model.removeprefix("builtin:"),
        host=host,
        port=port,
        lora_adapters=options.lora_adapters,
    )
    env = {
        "VLLM_CONFIGURE_LOGGING": "1",
        "VLLM_LOGGING_LEVEL": "DEBUG" if debug else "WARNING",
        "VLLM_LOGGING_STREAM": "ext://sys.stderr",
    }
    if not debug:
        command.append("--disable-uvicorn-access-log")
    if cpu and options.cpu_kv_cache_gib is not None:
        env["VLLM_CPU_KVCACHE_SPACE"] = f"{options.cpu_kv_cache_gib:g}"
    return command, env


def _serve(command: list[str], env: dict[str, str], url: str, name: str) -> int:
    """Run `vllm serve`, say when it answers, and stop it with this process."""
    from engine import reaper

    started = time.monotonic()
    process = subprocess.Popen(command, env=env)
    import psutil

    with contextlib.suppress(psutil.Error):
        reaper.guard([psutil.Process(process.pid)])  # stopped even if this process is killed

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if _wait_healthy(process, url, started):
            err(f"coder-lsp engine: {name} ready at {url} in {time.monotonic() - started:.0f} s")
            err(f"  for complete and fix: export {ENGINE_ENV}={url}   (or --engine {url})")
            err(f'  for editors: engine.backend = "remote", engine.endpoints = ["{url}"]')
        code = process.wait()
        err(f"coder-lsp engine: vllm serve exited with status {code}")
        return 1
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
        err("coder-lsp engine: stopped")
        return 0


def _wait_healthy(process: subprocess.Popen[bytes], url: str, started: float) -> bool:
    """Whether the server answers `/health` before it exits or the start timeout passes."""
    health = url.removesuffix("/v1") + "/health"
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health, timeout=2).status_code == 200:
                return True
        time.sleep(0.5)
    err(f"coder-lsp engine: no answer at {health} after {START_TIMEOUT_S:.0f} s")
    return False


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])
