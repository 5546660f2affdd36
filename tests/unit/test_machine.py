"""CPU features and the dtype / attention backend resolved from them, without vLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest

from engine.machine import (
    AMX_MLA,
    CPU_ATTN,
    CPU_MLA,
    CpuFeatures,
    EngineConfigError,
    EnginePlan,
    model_config,
    model_uses_mla,
    parse_cpuinfo,
    plan_engine,
    uses_mla,
)
from engine.profiles import check_engine_options, get_profile
from engine.vllm_engine import engine_args
from lsp_server.config import (
    EngineSettings,
    Settings,
    load_settings,
    settings_json_schema,
    source_from_json,
)
from lsp_server.engine_host import engine_options

SAPPHIRE_RAPIDS = CpuFeatures(
    model="Intel(R) Xeon(R) Platinum 8481C",
    flags=frozenset(["avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]),
)
EPYC = CpuFeatures(model="AMD EPYC", flags=frozenset(["avx2", "avx512f", "avx512_bf16"]))
OLD_X86 = CpuFeatures(model="Intel(R) Core(TM) i7-6700", flags=frozenset(["avx2", "fma"]))

CPUINFO_INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu
"""
CPUINFO_ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm
CPU implementer\t: 0x41
"""


def test_cpuinfo_is_read_from_the_first_processor() -> None:
    intel = parse_cpuinfo(CPUINFO_INTEL)
    assert intel.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert intel.amx and intel.avx512_bf16 and intel.native_bf16
    arm = parse_cpuinfo(CPUINFO_ARM)
    assert not arm.amx and not arm.avx512_bf16 and arm.native_bf16
    empty = parse_cpuinfo("")
    assert not empty.amx and not empty.native_bf16
    assert "AMX: yes, AVX-512 BF16: yes" in intel.describe()
    assert EPYC.describe() == "AMD EPYC (AMX: no, AVX-512 BF16: yes)"


@pytest.mark.parametrize(
    ("cpu", "dtype", "backend", "mla", "expected"),
    [
        pytest.param(SAPPHIRE_RAPIDS, None, None, True, ("bfloat16", AMX_MLA), id="amx-auto-mla"),
        pytest.param(SAPPHIRE_RAPIDS, "auto", None, False, ("bfloat16", CPU_ATTN), id="amx-gemma"),
        pytest.param(
            SAPPHIRE_RAPIDS, "float32", None, True, ("float32", CPU_MLA), id="amx-float32-mla"
        ),
        pytest.param(
            SAPPHIRE_RAPIDS, "float16", None, True, ("float16", AMX_MLA), id="amx-float16-mla"
        ),
        pytest.param(
            SAPPHIRE_RAPIDS, "float32", None, None, ("float32", CPU_MLA), id="amx-float32-unknown"
        ),
        pytest.param(SAPPHIRE_RAPIDS, None, None, None, ("bfloat16", None), id="amx-unknown"),
        pytest.param(
            SAPPHIRE_RAPIDS, "bfloat16", "CPU_MLA", True, ("bfloat16", CPU_MLA), id="forced-ref"
        ),
        pytest.param(EPYC, None, None, True, ("bfloat16", CPU_MLA), id="avx512bf16-mla"),
        pytest.param(EPYC, "float32", None, True, ("float32", CPU_MLA), id="avx512bf16-float32"),
        pytest.param(OLD_X86, None, None, True, ("float32", CPU_MLA), id="avx2-mla"),
        pytest.param(OLD_X86, None, None, False, ("float32", CPU_ATTN), id="avx2-gemma"),
        pytest.param(OLD_X86, None, "cpu_mla", True, ("float32", CPU_MLA), id="lowercase-name"),
    ],
)
def test_the_plan_follows_the_cpu_and_the_model(
    cpu: CpuFeatures,
    dtype: str | None,
    backend: str | None,
    mla: bool | None,
    expected: tuple[str, str | None],
) -> None:
    plan = plan_engine(dtype, backend, cpu=cpu, mla=mla)
    assert (plan.dtype, plan.attention_backend) == expected
    assert plan.reason
    # The one pairing vLLM cannot start is never chosen.
    assert not (plan.attention_backend == AMX_MLA and plan.dtype == "float32")


@pytest.mark.parametrize(
    ("cpu", "dtype", "backend", "mla", "message"),
    [
        pytest.param(
            SAPPHIRE_RAPIDS,
            "float32",
            "AMX_MLA",
            True,
            "engine.attentionBackend 'AMX_MLA' packs bfloat16 or float16 weights and "
            "engine.dtype is 'float32'",
            id="amx-float32",
        ),
        pytest.param(
            OLD_X86,
            None,
            "AMX_MLA",
            None,
            "engine.attentionBackend 'AMX_MLA' packs bfloat16 or float16 weights and "
            "engine.dtype is 'float32'",
            id="amx-auto-float32-machine",
        ),
        pytest.param(
            EPYC,
            "bfloat16",
            "AMX_MLA",
            True,
            "needs a CPU with AMX tiles and this one has none (AMD EPYC)",
            id="amx-without-amx",
        ),
        pytest.param(
            EPYC, None, "FLASHMLA", True, "'FLASHMLA' does not run on a CPU", id="gpu-backend"
        ),
        pytest.param(
            EPYC, None, "CPU_ATTN", True, "'CPU_ATTN' is for models without MLA", id="attn-mla"
        ),
        pytest.param(EPYC, None, "CPU_MLA", False, "is for MLA models", id="mla-for-gemma"),
    ],
)
def test_pairings_that_cannot_start_are_refused_in_one_line(
    cpu: CpuFeatures, dtype: str | None, backend: str, mla: bool | None, message: str
) -> None:
    with pytest.raises(EngineConfigError) as caught:
        plan_engine(dtype, backend, cpu=cpu, mla=mla)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_on_gpus_vllm_chooses_and_cpu_backends_are_refused() -> None:
    plan = plan_engine(None, None, cpu=None, mla=True)
    assert (plan.dtype, plan.attention_backend) == (None, None)
    assert plan.serve_flags() == []
    assert plan_engine("bfloat16", "FLASHMLA", cpu=None, mla=True).attention_backend == "FLASHMLA"
    with pytest.raises(EngineConfigError, match="is a CPU backend"):
        plan_engine(None, "CPU_MLA", cpu=None, mla=True)


def test_the_plan_reaches_vllm_and_vllm_serve() -> None:
    plan = EnginePlan(dtype="bfloat16", attention_backend=CPU_MLA)
    options = engine_options(get_profile("tiny-moe"), Settings())
    args = engine_args("m", options, cpu=True, plan=plan)
    assert args["dtype"] == "bfloat16"
    assert args["attention_config"] == {"backend": CPU_MLA}
    assert plan.serve_flags() == ["--dtype", "bfloat16", "--attention-backend", CPU_MLA]
    # Without a plan (GPU callers), the options pass as they are.
    assert "attention_config" not in engine_args("m", options, cpu=False)


def test_no_profile_hard_codes_a_cpu_dtype() -> None:
    for name in ("tiny-moe", "cpu-small"):
        assert get_profile(name).engine.dtype in (None, "auto"), name


def test_mla_is_read_from_the_model_config(tmp_path: Path) -> None:
    assert model_uses_mla("builtin:tiny-moe") is True
    assert model_uses_mla("builtin:tiny-dense") is False
    assert model_uses_mla("builtin:cpu-small") is False
    assert model_uses_mla(str(tmp_path / "missing")) is None
    assert model_uses_mla("nobody/not-in-the-cache") is None
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "deepseek_v2", "kv_lora_rank": 512})
    )
    assert model_config(str(tmp_path)) == {"model_type": "deepseek_v2", "kv_lora_rank": 512}
    assert model_uses_mla(str(tmp_path)) is True
    assert uses_mla({"text_config": {"kv_lora_rank": 512}})
    assert not uses_mla({"kv_lora_rank": None})
    assert not uses_mla({"kv_lora_rank": 512, "is_causal": False})


def test_mla_is_off_when_vllm_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_MLA_DISABLE", "1")
    assert not uses_mla({"kv_lora_rank": 512})


def test_the_settings_check_names_the_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.profiles.cpu_features", lambda: SAPPHIRE_RAPIDS)
    bad = engine_options(
        get_profile("tiny-moe"),
        Settings(engine=EngineSettings(dtype="float32", attention_backend="AMX_MLA")),
    )
    problems = check_engine_options(bad, gpus=0, mla=True)
    assert len(problems) == 1 and "'AMX_MLA' packs bfloat16" in problems[0]
    fine = engine_options(get_profile("tiny-moe"), Settings(engine=EngineSettings(dtype="float32")))
    assert check_engine_options(fine, gpus=0, mla=True) == []


def test_attention_backend_is_a_setting() -> None:
    settings, errors = load_settings(
        [source_from_json("initializationOptions", {"engine": {"attentionBackend": "CPU_MLA"}})]
    )
    assert errors == [] and settings.engine.attention_backend == "CPU_MLA"
    _, errors = load_settings(
        [source_from_json("init", {"engine": {"attentionBackend": "no such; rm"}})]
    )
    assert errors and "attentionBackend" in errors[0]
    schema = settings_json_schema()
    assert "attentionBackend" in json.dumps(schema)


@pytest.mark.parametrize(
    ("cpu", "dtype", "setting", "flags"),
    [
        (SAPPHIRE_RAPIDS, None, None, ["--dtype", "bfloat16", "AMX_MLA"]),
        (EPYC, None, None, ["--dtype", "bfloat16", "CPU_MLA"]),
        (OLD_X86, None, None, ["--dtype", "float32", "CPU_MLA"]),
        (SAPPHIRE_RAPIDS, "float32", None, ["--dtype", "float32", "CPU_MLA"]),
    ],
    ids=["amx", "avx512-bf16", "neither", "amx-float32"],
)
def test_coder_lsp_engine_serves_what_the_embedded_engine_would_run(
    cpu: CpuFeatures,
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None,
    setting: str | None,
    flags: list[str],
) -> None:
    """`coder-lsp engine`'s `vllm serve` gets the embedded engine's choice for the CPU, on an
    AMX machine (bfloat16 weights for AMX_MLA) and on one without AMX."""
    from lsp_server.cli.engine import engine_command, engine_plan

    profile = get_profile("tiny-moe")
    settings = Settings(engine=EngineSettings(dtype=dtype, attention_backend=setting))
    plan = engine_plan(profile, settings, cpu)
    command, env = engine_command(
        profile, settings, plan, "/models/tiny-moe", cpu=True, host="127.0.0.1", port=8011
    )
    line = " ".join(command)
    assert " ".join(flags[:2]) in line
    assert f'--attention-config {{"backend": "{flags[2]}"}}' in line
    assert "--served-model-name tiny-moe" in line and "--max-model-len 2048" in line
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"
