"""Profiles and settings to vLLM engine arguments, without vLLM."""

from __future__ import annotations

from typing import Any

import pytest

from engine import EngineStatus
from engine.profiles import PROFILES, check_engine_options, get_profile
from engine.templates import template_for
from engine.vllm_engine import engine_args, serve_command
from lsp_server.cli.workspace import ENGINE_ENV, engine_url, use_engine
from lsp_server.completion.pipeline import lora_for
from lsp_server.config import CompletionSettings, EngineSettings, Settings
from lsp_server.engine_host import EngineHost, engine_options


def test_user_settings_override_the_profile() -> None:
    settings = Settings(engine=EngineSettings(max_model_len=4096, dtype="bfloat16"))
    options = engine_options(get_profile("deepseek-v2-lite"), settings)
    assert options.max_model_len == 4096
    assert options.dtype == "bfloat16"
    assert options.gpu_memory_utilization == 0.85  # the profile's value stays


def test_engine_args_enable_prefix_caching_and_pass_settings() -> None:
    options = engine_options(
        get_profile("deepseek-v2"), Settings(engine=EngineSettings(kv_cache_dtype="fp8"))
    )
    args = engine_args("m", options, cpu=False)
    assert args["enable_prefix_caching"] is True
    assert args["tensor_parallel_size"] == 8
    assert args["kv_cache_dtype"] == "fp8"
    assert args["model"] == "m"


def test_gpu_memory_utilization_is_not_passed_on_cpu() -> None:
    options = engine_options(
        get_profile("cpu-small"), Settings(engine=EngineSettings(gpu_memory_utilization=0.5))
    )
    assert "gpu_memory_utilization" not in engine_args("m", options, cpu=True)
    assert engine_args("m", options, cpu=False)["gpu_memory_utilization"] == 0.5


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_names_a_known_template(name: str) -> None:
    profile = get_profile(name)
    assert template_for(profile.template).name == profile.template


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="tiny-moe"):
        get_profile("gpt-17")


def test_big_machine_settings_reach_vllm_unchanged() -> None:
    user = EngineSettings(
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        enable_expert_parallel=True,
        distributed_executor_backend="ray",
        quantization="fp8",
        kv_cache_dtype="fp8",
        speculative_ngram_tokens=5,
        lora_adapters={"py-style": "/adapters/py"},
        max_lora_rank=16,
    )
    options = engine_options(get_profile("deepseek-v2"), Settings(engine=user))
    args = engine_args("m", options, cpu=False)
    assert {k: args[k] for k in ("tensor_parallel_size", "pipeline_parallel_size")} == {
        "tensor_parallel_size": 4,
        "pipeline_parallel_size": 2,
    }
    assert args["enable_expert_parallel"] is True
    assert args["distributed_executor_backend"] == "ray"
    assert args["quantization"] == "fp8" and args["kv_cache_dtype"] == "fp8"
    assert args["speculative_config"]["method"] == "ngram"
    assert args["speculative_config"]["num_speculative_tokens"] == 5
    assert args["enable_lora"] is True and args["max_lora_rank"] == 16


@pytest.mark.parametrize(
    ("user", "gpus", "message"),
    [
        pytest.param(
            EngineSettings(tensor_parallel_size=8),
            0,
            "engine.tensorParallelSize 8 x engine.pipelineParallelSize 1 needs 8 GPUs and "
            "this machine has 0",
            id="tp-over-gpus",
        ),
        pytest.param(
            EngineSettings(tensor_parallel_size=2, pipeline_parallel_size=2),
            2,
            "needs 4 GPUs and this machine has 2",
            id="tp-times-pp",
        ),
        pytest.param(
            EngineSettings(enable_expert_parallel=True),
            1,
            "engine.enableExpertParallel needs more than one GPU",
            id="expert-parallel-alone",
        ),
        pytest.param(
            EngineSettings(quantization="fp8"), 0, "engine.quantization 'fp8' needs a GPU", id="fp8"
        ),
        pytest.param(
            EngineSettings(lora_adapters={"x": "/no/such/adapter"}),
            0,
            "engine.loraAdapters.x: no adapter directory at /no/such/adapter",
            id="lora-path",
        ),
    ],
)
def test_impossible_engine_settings_are_named(
    user: EngineSettings, gpus: int, message: str
) -> None:
    options = engine_options(get_profile("tiny-moe"), Settings(engine=user))
    problems = check_engine_options(options, gpus=gpus)
    assert len(problems) == 1 and message in problems[0], problems


def test_ray_may_span_more_gpus_than_this_machine_has() -> None:
    user = EngineSettings(tensor_parallel_size=8, distributed_executor_backend="ray")
    options = engine_options(get_profile("deepseek-v2"), Settings(engine=user))
    assert check_engine_options(options, gpus=0) == []


async def test_the_engine_is_not_loaded_when_its_settings_cannot_work() -> None:
    settings = Settings(
        engine=EngineSettings(tensor_parallel_size=64),
        completion=CompletionSettings(lora="ghost"),
    )
    host = EngineHost.for_profile("tiny-moe", settings)
    state = await host.start()
    assert state.status is EngineStatus.FAILED and host.engine is None
    assert "engine.tensorParallelSize 64" in state.reason
    assert "completion.lora 'ghost' is not in engine.loraAdapters (none)" in state.reason


def test_lora_is_chosen_by_language_then_workspace() -> None:
    settings = CompletionSettings(lora="team", lora_by_language={"python": "py-style"})
    assert lora_for(settings, "python") == "py-style"
    assert lora_for(settings, "go") == "team"
    assert lora_for(CompletionSettings(), "python") == ""


def test_a_missing_model_directory_is_named_before_loading() -> None:
    settings = Settings(engine=EngineSettings(model="/no/where/model", edit_model="~/nope"))
    problems = EngineHost.for_profile("tiny-moe", settings).problems()
    assert problems == [
        "engine.model: no model directory at /no/where/model",
        "engine.editModel: no model directory at ~/nope",
    ]
    hub_id = Settings(engine=EngineSettings(model="deepseek-ai/DeepSeek-Coder-V2-Lite-Base"))
    assert EngineHost.for_profile("tiny-moe", hub_id).problems() == []


def test_which_engine_fixes_run_on_with_the_remote_backend() -> None:
    def host(**engine: object) -> EngineHost:
        user = EngineSettings(backend="remote", endpoints=["http://a/v1"], **engine)  # type: ignore[arg-type]
        return EngineHost.for_profile("tiny-moe", Settings(engine=user))

    assert host().shares_edit_engine, "one served model for both roles"
    assert not host(edit_model="instruct").shares_edit_engine
    assert not host(edit_endpoints=["http://b/v1"]).shares_edit_engine


def test_local_only_refuses_endpoints_off_this_machine() -> None:
    from lsp_server.config import PrivacySettings

    def problems(*endpoints: str) -> list[str]:
        settings = Settings(
            engine=EngineSettings(backend="remote", endpoints=list(endpoints)),
            privacy=PrivacySettings(mode="local-only"),
        )
        return EngineHost.for_profile("tiny-moe", settings).problems()

    assert problems("http://127.0.0.1:8000/v1", "http://localhost:9/v1", "http://[::1]:8/v1") == []
    (problem,) = problems("http://127.0.0.1:8000/v1", "https://gpu-box.example.com/v1")
    assert problem == (
        "privacy.mode 'local-only' refuses engine endpoints that are not on this machine: "
        "https://gpu-box.example.com/v1"
    )


async def test_a_torchvision_that_breaks_vllms_import_is_named(monkeypatch: Any) -> None:
    """PyPI's torchvision for another torch makes vLLM's import raise `operator
    torchvision::nms does not exist`: the engine fails with what to uninstall, on either CPU
    path (the import comes before any backend is chosen)."""
    import builtins

    from engine import EngineStatus
    from engine.vllm_engine import TORCHVISION_MISMATCH, EmbeddedVLLMEngine

    real_import = builtins.__import__

    def broken(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("vllm"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    engine = EmbeddedVLLMEngine("/nonexistent/model")
    await engine.start()
    assert engine.state.status is EngineStatus.FAILED
    assert engine.state.reason == TORCHVISION_MISMATCH


def test_serve_command_gives_vllm_serve_the_embedded_engines_arguments() -> None:
    options = get_profile("tiny-moe").engine
    args = engine_args("/models/tiny", options, cpu=True)
    args["attention_config"] = {"backend": "CPU_MLA"}
    args["enable_chunked_prefill"] = False
    command = serve_command(
        args, served_name="tiny-moe", host="127.0.0.1", port=8011, lora_adapters={"ours": "/a"}
    )
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    flags = " ".join(command[3:])
    assert "--model /models/tiny" in flags and "--max-model-len 2048" in flags
    assert "--enforce-eager" in flags and "--no-enable-chunked-prefill" in flags
    assert '--attention-config {"backend": "CPU_MLA"}' in flags
    assert "--served-model-name tiny-moe --host 127.0.0.1 --port 8011" in flags
    assert flags.endswith("--lora-modules ours=/a")


def test_an_engine_url_puts_the_commands_on_the_remote_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_url(None) is None
    assert use_engine(Settings(), None) == Settings()
    monkeypatch.setenv(ENGINE_ENV, "http://127.0.0.1:8011/v1")
    assert engine_url(None) == "http://127.0.0.1:8011/v1"
    assert engine_url("http://127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"  # the flag wins
    engine = use_engine(Settings(), "http://127.0.0.1:8011/v1").engine
    assert engine.backend == "remote" and engine.endpoints == ["http://127.0.0.1:8011/v1"]


def test_a_tokenizer_is_never_downloaded_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote engine's served name without local files: the hub's cache is looked at, the
    network never (it cost seconds of retries at every start, and sent the name out)."""
    import huggingface_hub

    from engine.tokenizer import HFTokenizer

    asked: list[dict[str, Any]] = []

    def fake(repo_id: str, filename: str, **kwargs: Any) -> str:
        asked.append({"repo_id": repo_id, **kwargs})
        raise FileNotFoundError(repo_id)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    with pytest.raises(FileNotFoundError):
        HFTokenizer.from_model("tiny-moe")
    assert asked == [{"repo_id": "tiny-moe", "local_files_only": True}]
