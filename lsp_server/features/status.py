"""`coderLsp/engineStats`: the engine's state and the requests it still holds."""

from __future__ import annotations

from typing import Any

from engine.machine import cpu_features
from engine.vllm_engine import EmbeddedVLLMEngine
from lsp_server.privacy.guard import unwrap
from lsp_server.server import CoderLanguageServer

ENGINE_STATS = "coderLsp/engineStats"
REQUEST_LOG = "coderLsp/requestLog"
COMPLETION_LOG = "coderLsp/completionLog"


def register(server: CoderLanguageServer) -> None:
    @server.feature(ENGINE_STATS)
    def engine_stats(ls: CoderLanguageServer, params: Any) -> dict[str, Any]:
        host = ls.host
        state = host.state if host else None
        engine = host.engine if host else None
        embedded = unwrap(engine)
        plan = embedded.plan if isinstance(embedded, EmbeddedVLLMEngine) else None
        cpu = cpu_features()
        return {
            "profile": host.profile.name if host else None,
            "state": state.status.value if state else "stopped",
            "reason": state.reason if state else "",
            "model": state.model if state else "",
            # Read from vLLM's own bookkeeping, not counted by the server.
            "unfinishedRequests": engine.unfinished_requests() if engine else 0,
            "inflightCompletions": sum(not t.done() for t in ls.inflight.values()),
            "runningGenerations": ls.reuse.streams.running(),
            "endpoints": getattr(engine, "endpoints", list)(),
            # The embedded engine's resolved dtype and attention backend (None: remote, or
            # not resolved yet), and the CPU features they were chosen by.
            "dtype": plan.dtype if plan else None,
            "attentionBackend": plan.attention_backend if plan else None,
            "cpu": {"model": cpu.model, "amx": cpu.amx, "avx512Bf16": cpu.avx512_bf16},
            "served": {
                "engine": ls.reuse.stats.engine,
                "cache": ls.reuse.stats.cache,
                "follow": ls.reuse.stats.follow,
                "gate": ls.reuse.stats.gate,
            },
            # Only with the lag probe on (a benchmark's CODER_LSP_LOOP_PROBE_MS); read, reset.
            "loopLagMs": ls.loop_probe.read() if ls.loop_probe is not None else None,
        }

    @server.feature(REQUEST_LOG)
    def request_log(ls: CoderLanguageServer, params: Any) -> list[dict[str, Any]]:
        """The engine's record of its recent requests (prompts included), oldest first."""
        engine = ls.host.engine if ls.host else None
        if engine is None:
            return []
        return [
            {
                "requestId": r.request_id,
                "prompt": r.prompt,
                "status": r.status,
                "maxTokens": r.max_tokens,
                "tokens": r.tokens,
            }
            for r in engine.request_log()
        ]

    @server.feature(COMPLETION_LOG)
    def completion_log(ls: CoderLanguageServer, params: Any) -> list[dict[str, Any]]:
        """The latest completions answered, oldest first: source ("engine", "cache",
        "follow", "gate"), the items shown, and for reused ones what was typed through and
        the items as first made; `stages`, where each one's time went (ms)."""
        return [
            {**entry, "stages": {k: round(v, 3) for k, v in entry.get("stages", {}).items()}}
            for entry in ls.completion_log
        ]
