"""Owns the engine: which one to build from profile and settings, its loading and its tokenizer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from engine import Engine, EngineNotReady, EngineState, EngineStatus
from engine.chat import ChatTemplate, chat_template
from engine.machine import model_uses_mla
from engine.profiles import (
    EngineOptions,
    Profile,
    check_engine_options,
    get_profile,
    gpu_count,
    prepare_model,
)
from engine.templates import FimTemplate, check_markers, template_for
from engine.tokenizer import HFTokenizer, PromptTokenizer
from lsp_server.config import Settings
from lsp_server.privacy.guard import GuardedEngine, GuardedTokenizer, unwrap
from lsp_server.privacy.redact import Redactor, redactor_for

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


def is_local(url: str) -> bool:
    """Whether an endpoint URL is on this machine (a loopback host)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def engine_options(profile: Profile, settings: Settings) -> EngineOptions:
    """The profile's engine options with the user's settings laid over them."""
    user = settings.engine
    overrides = {
        "max_model_len": user.max_model_len,
        "gpu_memory_utilization": user.gpu_memory_utilization,
        "tensor_parallel_size": user.tensor_parallel_size,
        "dtype": user.dtype,
        "attention_backend": user.attention_backend,
        "kv_cache_dtype": user.kv_cache_dtype,
        "cpu_kv_cache_gib": user.cpu_kv_cache_gib,
        "pipeline_parallel_size": user.pipeline_parallel_size,
        "enable_expert_parallel": user.enable_expert_parallel,
        "distributed_executor_backend": user.distributed_executor_backend,
        "quantization": user.quantization,
        "speculative_ngram_tokens": user.speculative_ngram_tokens,
        "lora_adapters": dict(user.lora_adapters) or None,
        "max_lora_rank": user.max_lora_rank,
    }
    return msgspec.structs.replace(
        profile.engine, **{k: v for k, v in overrides.items() if v is not None}
    )


@dataclass
class EngineHost:
    """The running engine with what the completion path needs from it."""

    profile: Profile
    settings: Settings
    engine: Engine | None = None
    template: FimTemplate | None = None
    tokenizer: PromptTokenizer | None = None
    warnings: list[str] = field(default_factory=list)
    failure: EngineState | None = None
    stopped: bool = False
    edit_engine: Engine | None = None
    """A second engine, only when the edit model is not the completion model."""
    edit_tokenizer: PromptTokenizer | None = None
    _edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    on_state: Callable[[EngineState], None] | None = None
    """Told when a running engine's state changes (remote endpoints going down or up)."""

    @classmethod
    def for_profile(cls, name: str, settings: Settings) -> EngineHost:
        return cls(profile=get_profile(name), settings=settings)

    @property
    def model(self) -> str:
        return self.settings.engine.model or self.profile.completion_model

    @property
    def edit_model(self) -> str:
        return self.settings.engine.edit_model or self.profile.edit_model

    @property
    def shares_edit_engine(self) -> bool:
        """Whether fixes run on the completion engine (one model for both roles)."""
        user = self.settings.engine
        if self.remote and user.edit_model is None:
            # Separate edit endpoints serve the profile's edit model under its own name.
            return not user.edit_endpoints and (
                self.profile.edit_model == self.profile.completion_model
            )
        return self.edit_model == self.model

    @property
    def remote(self) -> bool:
        return self.settings.engine.backend == "remote"

    @property
    def redactor(self) -> Redactor:
        """Secret redaction as the privacy settings have it (the step every prompt passes)."""
        privacy = self.settings.privacy
        return redactor_for(privacy.redact, privacy.patterns, privacy.allow)

    def guard(self, engine: Engine) -> Engine:
        """`engine` behind the engine boundary: every prompt it gets is redacted first."""
        return (
            engine
            if isinstance(engine, GuardedEngine)
            else GuardedEngine(engine, lambda: self.redactor)
        )

    @property
    def max_model_len(self) -> int:
        """The context length the engines run with (vLLM's default when unset)."""
        return engine_options(self.profile, self.settings).max_model_len or 4096

    @property
    def state(self) -> EngineState:
        if self.failure is not None:
            return self.failure
        if self.engine is None:
            if self.stopped:
                return EngineState(EngineStatus.STOPPED, "", self.model)
            return EngineState(EngineStatus.STARTING, "waiting to start", self.model)
        state = self.engine.state
        if state.status is EngineStatus.READY and self.tokenizer is None:
            # Ready only once completions can be made: the tokenizer loads after the engine.
            return EngineState(EngineStatus.STARTING, "loading the tokenizer", state.model)
        return state

    @property
    def ready(self) -> bool:
        return self.state.status is EngineStatus.READY and self.tokenizer is not None

    def build_engine(self, progress: Progress | None, model: str | None = None) -> Engine:
        """The engine for the settings' backend: embedded vLLM, or `vllm serve` endpoints."""
        if self.remote:
            from engine.remote import RemoteEngine, RemoteOptions, api_key_from_env

            user = self.settings.engine
            endpoints = user.edit_endpoints if model and user.edit_endpoints else user.endpoints
            options = RemoteOptions(
                endpoints=tuple(endpoints),
                model=model or user.model,
                api_key=api_key_from_env(user.api_key_env),
                api_key_env=user.api_key_env,
                ca_bundle=user.ca_bundle,
                connect_timeout_s=user.connect_timeout_s,
                first_token_timeout_s=user.first_token_timeout_s,
            )
            return RemoteEngine(options, on_change=self.on_state)
        from engine.vllm_engine import EmbeddedVLLMEngine

        model = model or self.model
        return EmbeddedVLLMEngine(
            model,
            engine_options(self.profile, self.settings),
            progress=progress,
            prepare=lambda p: prepare_model(model, p),
            on_change=self.on_state,
        )

    def problems(self) -> list[str]:
        """Settings that cannot work here, each naming the setting (checked before loading)."""
        found: list[str] = []
        user = self.settings.engine
        for setting, model in (("engine.model", user.model), ("engine.editModel", user.edit_model)):
            local = model is not None and model.startswith(("/", "./", "../", "~"))
            if local and not self.remote and not Path(model or "").expanduser().exists():
                found.append(f"{setting}: no model directory at {model}")
        if self.remote and self.settings.privacy.mode == "local-only":
            user = self.settings.engine
            away = [url for url in (*user.endpoints, *user.edit_endpoints) if not is_local(url)]
            if away:
                found.append(
                    "privacy.mode 'local-only' refuses engine endpoints that are not on this "
                    f"machine: {', '.join(away)}"
                )
        if not self.remote:
            found += check_engine_options(
                engine_options(self.profile, self.settings),
                gpus=gpu_count(),
                mla=model_uses_mla(self.model),
            )
        completion = self.settings.completion
        adapters = self.settings.engine.lora_adapters
        wanted = {"completion.lora": completion.lora} | {
            f"completion.loraByLanguage.{lang}": name
            for lang, name in completion.lora_by_language.items()
        }
        for setting, name in wanted.items():
            if name and not self.remote and name not in adapters:
                known = ", ".join(sorted(adapters)) or "none"
                found.append(f"{setting} {name!r} is not in engine.loraAdapters ({known})")
        return found

    async def start(self, progress: Progress | None = None) -> EngineState:
        """Load the engine and its tokenizer; the returned state says how it went."""
        problems = self.problems()
        if problems:
            log.error("engine settings: %s", "; ".join(problems))
            self.failure = EngineState(EngineStatus.FAILED, "; ".join(problems), self.model)
            return self.failure
        try:
            engine = self.build_engine(progress)
        except Exception as exc:
            log.error("cannot build the engine: %s", exc)
            self.failure = EngineState(EngineStatus.FAILED, str(exc), self.model)
            return self.failure
        return await self.run(engine)

    async def run(self, engine: Engine) -> EngineState:
        """Start `engine` behind the engine boundary and load its tokenizer."""
        engine = self.guard(engine)
        self.engine = engine
        await engine.start()
        if engine.state.status is EngineStatus.READY:
            try:
                await asyncio.to_thread(self._load_tokenizer, engine)
            except Exception as exc:
                log.error("cannot load the tokenizer", exc_info=True)
                await engine.shutdown()
                self.failure = EngineState(EngineStatus.FAILED, f"tokenizer: {exc}", self.model)
                return self.failure
        return engine.state

    def _tokenizer_for(self, engine: Engine, model: str) -> PromptTokenizer:
        """The tokenizer of `engine`'s model: the setting, the engine's own files, or (remote
        only) the profile's model prepared locally; `engine.tokenizer = "endpoint"` asks the
        server's `/tokenize`."""
        user = self.settings.engine
        if self.remote and user.tokenizer == "endpoint":
            from engine.remote import EndpointTokenizer, RemoteEngine, api_key_from_env

            remote = unwrap(engine)
            assert isinstance(remote, RemoteEngine)
            endpoints = user.edit_endpoints if engine is self.edit_engine else user.endpoints
            # Text sent to /tokenize leaves the machine: it passes the redaction too.
            return GuardedTokenizer(
                EndpointTokenizer(
                    (endpoints or user.endpoints)[0],
                    remote.model,
                    api_key=api_key_from_env(user.api_key_env),
                    ca_bundle=user.ca_bundle,
                ),
                lambda: self.redactor,
            )
        candidates = [getattr(engine, "tokenizer_path", lambda: model)()]
        if self.remote:
            candidates.insert(0, self.settings.engine.tokenizer or "")
            candidates.append(model)
        errors: list[str] = []
        for candidate in (c for c in candidates if c):
            try:
                if candidate.startswith("builtin:"):
                    candidate = prepare_model(candidate)
                return HFTokenizer.from_model(candidate)
            except Exception as exc:
                errors.append(f"{candidate}: {exc}")
        raise RuntimeError("no tokenizer (engine.tokenizer): " + "; ".join(errors))

    def _load_tokenizer(self, engine: Engine) -> None:
        model = self.profile.completion_model if self.remote else self.model
        tokenizer = self._tokenizer_for(engine, model)
        template = template_for(self.profile.template).with_stops(self.profile.stop)
        self.warnings = check_markers(template, tokenizer)
        self.template, self.tokenizer = template, tokenizer

    async def editor(self) -> tuple[Engine, PromptTokenizer, ChatTemplate]:
        """The edit model's engine, tokenizer and chat format; EngineNotReady says why not.

        When the edit model is another model, its engine is started on first use.
        """
        chat = chat_template(self.profile.chat)
        if self.shares_edit_engine:
            if not self.ready or self.engine is None or self.tokenizer is None:
                state = self.state
                raise EngineNotReady(f"the engine is {state.status.value}: {state.reason}")
            return self.engine, self.tokenizer, chat
        async with self._edit_lock:
            if self.stopped:
                raise EngineNotReady("the server is shutting down")
            if self.edit_engine is None:
                engine = self.guard(self.build_engine(None, self.edit_model))
                self.edit_engine = engine
                await engine.start()
                if engine.state.status is EngineStatus.READY:
                    model = self.profile.edit_model if self.remote else self.edit_model
                    self.edit_tokenizer = await asyncio.to_thread(
                        self._tokenizer_for, engine, model
                    )
            engine = self.edit_engine
            if engine.state.status is not EngineStatus.READY or self.edit_tokenizer is None:
                state = engine.state
                raise EngineNotReady(
                    f"the edit model {self.edit_model} is {state.status.value}: {state.reason}"
                )
            return engine, self.edit_tokenizer, chat

    async def shutdown(self) -> None:
        self.stopped = True
        engine, self.engine = self.engine, None
        edit, self.edit_engine = self.edit_engine, None
        self.tokenizer = self.edit_tokenizer = None
        for one in (engine, edit):
            if one is not None:
                await one.shutdown()
