"""tiny-moe on each CPU attention path of vLLM's CPU build, and the pairings refused before
loading.

vLLM runs MLA models (DeepSeek-V2 and kin) with `AMX_MLA` on a CPU with AMX tiles, which
packs bfloat16/float16 weights only, and with the reference `CPU_MLA` elsewhere. Each path
below loads the real engine and completes a prompt; vLLM's own log line ("Using ... backend")
shows which attention backend it really ran. The AMX path needs a CPU with AMX: without one,
its test is skipped, saying so.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from engine import EngineStatus, GenerationRequest
from engine.machine import AMX_MLA, CPU_MLA, cpu_features, model_uses_mla, plan_engine
from engine.profiles import get_profile, prepare_model
from engine.vllm_engine import EmbeddedVLLMEngine
from lsp_server.config import EngineSettings, Settings
from lsp_server.engine_host import EngineHost, engine_options
from lsp_server.privacy.guard import unwrap

CPU = cpu_features()
NO_AMX = f"this CPU has no AMX tiles (amx_tile not in /proc/cpuinfo): {CPU.describe()}"
PROMPT = "def add(a, b):\n    return"
TOKENS = 12
CLI = [sys.executable, "-m", "lsp_server"]


def _settings(dtype: str | None, backend: str | None) -> Settings:
    return Settings(engine=EngineSettings(dtype=dtype, attention_backend=backend))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "backend", "expected"),
    [
        pytest.param("float32", CPU_MLA, ("float32", CPU_MLA), id="reference-CPU_MLA-float32"),
        pytest.param(
            None,
            None,
            plan_engine(None, None, cpu=CPU, mla=True),
            id="machine-default",
        ),
        pytest.param(
            None,
            AMX_MLA,
            ("bfloat16", AMX_MLA),
            id="AMX_MLA-bfloat16",
            marks=pytest.mark.skipif(not CPU.amx, reason=NO_AMX),
        ),
    ],
)
async def test_tiny_moe_completes_on_each_cpu_attention_path(
    dtype: str | None,
    backend: str | None,
    expected: object,
    capfd: pytest.CaptureFixture[str],
) -> None:
    if not isinstance(expected, tuple):  # the machine's own default plan
        expected = (expected.dtype, expected.attention_backend)  # type: ignore[attr-defined]
        assert expected[1] == (AMX_MLA if CPU.amx else CPU_MLA)
        assert expected[0] == ("bfloat16" if CPU.native_bf16 else "float32")
    host = EngineHost.for_profile("tiny-moe", _settings(dtype, backend))
    state = await host.start()
    try:
        assert state.status is EngineStatus.READY, state.reason
        engine = unwrap(host.engine)
        assert isinstance(engine, EmbeddedVLLMEngine) and engine.plan is not None
        assert (engine.plan.dtype, engine.plan.attention_backend) == expected
        request = GenerationRequest(prompt=PROMPT, max_tokens=TOKENS, ignore_eos=True)
        chunks = [chunk async for chunk in engine.generate(request)]
        assert chunks[-1].finished and chunks[-1].token_count == TOKENS
        assert chunks[-1].text
    finally:
        await host.shutdown()
    # vLLM's engine core (a child process writing to our stderr) says what it ran.
    logged = capfd.readouterr()
    assert f"Using {expected[1]} backend" in logged.out + logged.err


def test_float32_with_amx_is_refused_in_one_line_before_loading(tmp_path: Path) -> None:
    settings = _settings("float32", AMX_MLA)
    problems = EngineHost.for_profile("tiny-moe", settings).problems()
    assert len(problems) == 1 and "\n" not in problems[0]
    assert "AMX_MLA" in problems[0] and "'float32'" in problems[0]

    # Through the command line: one line on stderr, no traceback, no engine.
    config = tmp_path / "coder-lsp.toml"
    config.write_text('[engine]\ndtype = "float32"\nattention_backend = "AMX_MLA"\n')
    src = tmp_path / "a.py"
    src.write_text("def add(a, b):\n    return \n")
    proc = subprocess.run(
        [*CLI, "complete", f"{src}:2:12", "--profile", "tiny-moe", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "vllm" not in proc.stderr.lower()
    refusal = [line for line in proc.stderr.splitlines() if "AMX_MLA" in line]
    assert len(refusal) >= 1 and "engine.dtype is 'float32'" in refusal[0], proc.stderr

    doctor = subprocess.run(
        [*CLI, "doctor", "--profile", "tiny-moe", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 1
    assert "engine.attentionBackend 'AMX_MLA' packs bfloat16 or float16" in doctor.stdout


async def test_a_backend_for_another_kind_of_model_is_refused_after_preparing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the settings check cannot know before the model is at hand (its config) is
    checked in the engine, still before vLLM loads anything: one line, no traceback."""
    model = prepare_model("builtin:tiny-moe")
    assert model_uses_mla(model) is True
    options = engine_options(get_profile("tiny-moe"), _settings(None, "CPU_ATTN"))
    engine = EmbeddedVLLMEngine(model, options)
    with caplog.at_level(logging.ERROR, logger="engine.vllm_engine"):
        await engine.start()
    assert engine.state.status is EngineStatus.FAILED
    assert engine.state.reason.startswith("engine.attentionBackend 'CPU_ATTN' is for models")
    assert engine.unfinished_requests() == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    await engine.shutdown()
