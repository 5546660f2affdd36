"""Owns the engine: which one to build from profile and settings, its loading and its tokenizer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from engine import Engine, EngineState, EngineStatus
from engine.profiles import EngineOptions, Profile, get_profile, prepare_model
from engine.templates import FimTemplate, check_markers, template_for
from engine.tokenizer import HFTokenizer, PromptTokenizer
from lsp_server.config import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


def engine_options(profile: Profile, settings: Settings) -> EngineOptions:
    """The profile's engine options with the user's settings laid over them."""
    user = settings.engine
    overrides = {
        "max_model_len": user.max_model_len,
        "gpu_memory_utilization": user.gpu_memory_utilization,
        "tensor_parallel_size": user.tensor_parallel_size,
        "dtype": user.dtype,
        "kv_cache_dtype": user.kv_cache_dtype,
        "cpu_kv_cache_gib": user.cpu_kv_cache_gib,
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

    @classmethod
    def for_profile(cls, name: str, settings: Settings) -> EngineHost:
        return cls(profile=get_profile(name), settings=settings)

    @property
    def model(self) -> str:
        return self.settings.engine.model or self.profile.completion_model

    @property
    def state(self) -> EngineState:
        if self.failure is not None:
            return self.failure
        if self.engine is None:
            if self.stopped:
                return EngineState(EngineStatus.STOPPED, "", self.model)
            return EngineState(EngineStatus.STARTING, "waiting to start", self.model)
        return self.engine.state

    @property
    def ready(self) -> bool:
        return self.state.status is EngineStatus.READY and self.tokenizer is not None

    def build_engine(self, progress: Progress | None) -> Engine:
        """The engine for the settings' backend (only `embedded` exists so far)."""
        if self.settings.engine.backend != "embedded":
            raise ValueError(
                f"engine.backend {self.settings.engine.backend!r} is not available yet; "
                "use 'embedded'"
            )
        from engine.vllm_engine import EmbeddedVLLMEngine

        model = self.model
        return EmbeddedVLLMEngine(
            model,
            engine_options(self.profile, self.settings),
            progress=progress,
            prepare=lambda p: prepare_model(model, p),
        )

    async def start(self, progress: Progress | None = None) -> EngineState:
        """Load the engine and its tokenizer; the returned state says how it went."""
        try:
            engine = self.build_engine(progress)
        except Exception as exc:
            log.error("cannot build the engine: %s", exc)
            self.failure = EngineState(EngineStatus.FAILED, str(exc), self.model)
            return self.failure
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

    def _load_tokenizer(self, engine: Engine) -> None:
        path = getattr(engine, "tokenizer_path", lambda: self.model)()
        tokenizer = HFTokenizer.from_model(path)
        template = template_for(self.profile.template).with_stops(self.profile.stop)
        self.warnings = check_markers(template, tokenizer)
        self.template, self.tokenizer = template, tokenizer

    async def shutdown(self) -> None:
        self.stopped = True
        engine, self.engine = self.engine, None
        self.tokenizer = None
        if engine is not None:
            await engine.shutdown()
