"""Profiles and settings to vLLM engine arguments, without vLLM."""

from __future__ import annotations

import pytest

from engine.profiles import PROFILES, get_profile
from engine.templates import template_for
from engine.vllm_engine import engine_args
from lsp_server.config import EngineSettings, Settings
from lsp_server.engine_host import engine_options


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
