"""LoRA with the embedded engine: a tiny adapter built by project code.

vLLM's CPU build cannot serve LoRA on tiny-moe: with LoRA on, its MoE layers go through a
Triton kernel that has no CPU backend ("module 'triton.language' has no attribute
'float32'"). So the adapter is built for `tiny-dense`, a Llama-architecture model built the same
way (random weights, tiny-moe's tokenizer). Requests of a workspace configured with the adapter
are served with it (the engine's request record says so, and greedy text differs from the base
model's); others are not.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine import EngineStatus, GenerationRequest
from engine.models.tiny_lora import RANK, build_tiny_lora
from engine.profiles import cache_root, prepare_model
from engine.remote import RemoteEngine, RemoteOptions
from lsp_server.completion.pipeline import complete
from lsp_server.config import CompletionSettings, EngineSettings, Settings
from lsp_server.engine_host import EngineHost
from tests.engine.vllm_serve import serving

TEXT = "Shopping list:\n- milk\n- "


async def test_a_workspace_with_an_adapter_is_served_with_it() -> None:
    base = Path(prepare_model("builtin:tiny-dense"))
    adapter = build_tiny_lora(base, cache_root() / "models" / "tiny-lora")
    completion = CompletionSettings(max_tokens=8, cache=False, postprocess=False)
    settings = Settings(
        engine=EngineSettings(
            model="builtin:tiny-dense", lora_adapters={"tiny": str(adapter)}, max_lora_rank=RANK
        ),
        completion=completion,
    )
    host = EngineHost.for_profile("tiny-moe", settings)
    state = await host.start()
    try:
        assert state.status is EngineStatus.READY, state.reason
        plain = await complete(host, TEXT, len(TEXT), "plaintext")
        host.settings = msgspec.structs.replace(
            settings, completion=msgspec.structs.replace(completion, lora="tiny")
        )
        adapted = await complete(host, TEXT, len(TEXT), "plaintext")

        assert host.engine is not None
        *_, first, second = host.engine.request_log()
        assert (first.lora, first.status) == ("", "finished")
        assert (second.lora, second.status) == ("tiny", "finished")
        assert plain.raw and adapted.raw and plain.raw != adapted.raw, (plain.raw, adapted.raw)
    finally:
        await host.shutdown()


async def test_the_remote_engine_asks_for_the_adapter_by_its_served_name() -> None:
    base = Path(prepare_model("builtin:tiny-dense"))
    adapter = build_tiny_lora(base, cache_root() / "models" / "tiny-lora")
    extra = ["--enable-lora", "--max-lora-rank", str(RANK), "--lora-modules", f"tiny={adapter}"]
    with serving(model="builtin:tiny-dense", extra=extra) as server:
        engine = RemoteEngine(RemoteOptions(endpoints=(server.url,), model=server.name))
        await engine.start()
        try:
            assert engine.state.status is EngineStatus.READY, engine.state.reason
            request = GenerationRequest(prompt=TEXT, max_tokens=8)
            plain = [c async for c in engine.generate(request)][-1]
            adapted_request = msgspec.structs.replace(request, lora="tiny")
            adapted = [c async for c in engine.generate(adapted_request)][-1]
            *_, first, second = engine.request_log()
            assert (first.lora, second.lora) == ("", "tiny")
            assert first.status == second.status == "finished"
            assert plain.text != adapted.text, "the server applied the adapter"
        finally:
            await engine.shutdown()
