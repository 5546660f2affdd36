"""Real `vllm serve` processes (vLLM's OpenAI-compatible server) on 127.0.0.1 for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from engine.machine import EnginePlan, cpu_features, model_config, plan_engine, uses_mla
from engine.profiles import prepare_model
from tests.engine_trace import record_engine_start

SERVED_NAME = "tiny-moe"
START_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VllmServer:
    """One `vllm serve` of tiny-moe; `url` is its API base (``.../v1``)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        cpu: str = "auto",
        model: str = f"builtin:{SERVED_NAME}",
        extra: Sequence[str] = (),
        dtype: str | None = None,
        attention_backend: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = Path(tempfile.mkstemp(prefix="vllm-serve-", suffix=".log")[1])
        self.name = model.removeprefix("builtin:")
        model = prepare_model(model)
        config = model_config(model)
        # The same resolution as the embedded engine: dtype and attention backend for this CPU.
        self.plan: EnginePlan = plan_engine(
            dtype,
            attention_backend,
            cpu=cpu_features(),
            mla=None if config is None else uses_mla(config),
        )
        self.started = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            model,
            "--served-model-name",
            self.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            "2048",
            *self.plan.serve_flags(),
            "--enforce-eager",
        ]
        if api_key:
            command += ["--api-key", api_key]
        command += list(extra)
        # Each server gets its own core (or none pinned): two CPU engines pinned to the same
        # core starve each other.
        env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": cpu, "VLLM_CPU_KVCACHE_SPACE": "1"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.root}/health", timeout=2).status_code == 200:
                    record_engine_start(
                        f"vllm serve {self.name}",
                        self.plan.dtype,
                        self.plan.attention_backend,
                        time.monotonic() - self.started,
                    )
                    return
            time.sleep(0.5)
        raise TimeoutError(f"vllm serve did not become healthy:\n{self.tail()}")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a Prometheus metric's samples whose labels include `labels`."""
        # A server busy generating on one core can take seconds to answer.
        text = httpx.get(f"{self.root}/metrics", timeout=30).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server and its engine process group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Leftover engine processes of the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """Kill the server abruptly (a crash, not a shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        # Seconds, at times: the kernel frees a large address space on a busy machine.
        self.process.wait(timeout=60)


@contextlib.contextmanager
def serving(
    *,
    api_key: str | None = None,
    cpu: str = "auto",
    model: str = f"builtin:{SERVED_NAME}",
    extra: Sequence[str] = (),
    dtype: str | None = None,
    attention_backend: str | None = None,
) -> Iterator[VllmServer]:
    server = VllmServer(
        api_key=api_key,
        cpu=cpu,
        model=model,
        extra=extra,
        dtype=dtype,
        attention_backend=attention_backend,
    )
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()
