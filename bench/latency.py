"""Latency of the server itself: what a keystroke costs besides the model.

`coder-lsp serve --stdio` driven with raw LSP frames, the remote backend pointed at the stub
OpenAI-compatible server of the tests on 127.0.0.1 (one write per response, TCP_NODELAY, a
one-line answer), the tokenizer local (tiny-moe's). The workspace holds standard library
modules, so prompts carry repository context, and one big file typed into half way down.

- `sizes`: one document of 100 to 100,000 lines; each keystroke an incremental `didChange`
  and an invoked `inlineCompletion` (no gate, no cache: the whole pipeline every time),
  answered before the next. Server share = the server's own time for the keystroke (its
  stages in `coderLsp/completionLog`: the `didChange` from its frame's arrival, then the
  request from its frame's arrival to its answer's write) - the stub's own time (its median,
  asked from this process over a bare connection with the same prompts): everything but the
  backend, the server's HTTP client included. The round trip, on the client's clock, adds
  the pipes and the client's own reading and writing. The stages show where the time goes.
- `change`: a one-character `didChange`'s cost in the server (the `document` stage), at
  100,000 lines and at 10,000 lines while a bracket stays open.
- `documents`: 1, 4 and 16 documents of 5,000 lines typed at the same time, 10 characters a
  second each, as VS Code does (an automatic `inlineCompletion` per keystroke, the previous
  one cancelled if still pending); p95 against one document's.
- `lag`: a typing replay (the typing bench's rhythm) on 10,000 and 100,000-line files with the
  server's event-loop probe on (`CODER_LSP_LOOP_PROBE_MS`); the largest stall.
- `engine`: tiny-moe embedded, through LSP, against vLLM's `AsyncLLM` driven bare in this
  process with the prompts the server sent, each for as many tokens as the server's
  generation made; one engine at a time (an idle vLLM engine core still takes a CPU),
  alternating server and bare runs, server first and last (this machine's speed drifts by
  tens of percent over minutes: each bare run is compared with the server runs around it).

    .venv/bin/python bench/latency.py [--parts sizes change documents lag engine] \\
        [--keystrokes 150] [--seconds 20] [--write-readme]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import asyncio
import contextlib
import gc
import json
import random
import shlex
import shutil
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.report import describe, replace_section
from bench.typing_replay import keystrokes, schedule
from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLOT = HERE / "latency.png"
OUTPUT = HERE / "results" / "latency.json"
SECTION = "## Latency: the server's own share"
ENGINE_ROUNDS = 4
"""Server runs of the engine part; a bare run sits between each two."""
STDLIB = Path(sysconfig.get_paths()["stdlib"])
CONTEXT_MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "heapq.py", "string.py", "glob.py")
FILLER_MODULES = (
    "difflib.py", "calendar.py", "csv.py", "dataclasses.py", "functools.py", "gettext.py",
    "posixpath.py", "base64.py", "bisect.py", "colorsys.py", "json/decoder.py", "json/encoder.py",
)  # fmt: skip
TYPED = (
    "    wrapped = textwrap.fill(text, width=width)\n"
    "    words = shlex.split(wrapped)\n"
    "    picked = [w for w in words if fnmatch.fnmatch(w, pattern)]\n"
    "    largest = heapq.nlargest(3, picked, key=len)\n"
    "    return string.capwords(' '.join(largest))\n"
)
BRACKET_TYPED = "    total = compute(first, second, third, fourth, fifth, sixth, seventh, eighth"
BACKEND_STAGES = ("engineQueue", "firstToken", "generation")
DEFINITIONS = ("def fill(", "def split(", "def fnmatch(", "def nlargest(", "def capwords(")
"""Signatures of what the typed code calls: a prompt with one of them has repository context."""
CANCELLED = -32800
Json = dict[str, Any]


def workspace(root: Path, lines: int, name: str = "big.py") -> tuple[Path, str, int]:
    """Context modules and one file of `lines` lines; its text and the offset typed at (the
    start of an empty function body half way down)."""
    for module in CONTEXT_MODULES:
        shutil.copy(STDLIB / module, root / module)
    filler: list[str] = []
    i = 0
    while len(filler) < lines:
        source = (STDLIB / FILLER_MODULES[i % len(FILLER_MODULES)]).read_text(encoding="utf-8")
        filler += [line for line in source.splitlines(keepends=True) if line.strip()]
        i += 1
    head = "import fnmatch\nimport heapq\nimport shlex\nimport string\nimport textwrap\n\n"
    function = "\n\ndef summarize(text, width, pattern):\n"
    half = max(0, lines // 2 - 4)
    before = head + "".join(filler[:half]) + function
    after = "\n\n" + "".join(filler[half : max(half, lines - 8)])
    path = root / name
    text = before + after
    path.write_text(text, encoding="utf-8")
    return path, text, len(before)


@contextlib.contextmanager
def stub_workspace() -> Iterator[tuple[Path, StubOpenAI]]:
    """A scratch workspace folder and the stub backend (a one-line answer)."""
    with (
        tempfile.TemporaryDirectory(prefix="coder-lsp-latency-") as tmp,
        StubOpenAI(reply=lambda prompt: "print(x)\n") as stub,
    ):
        yield Path(tmp), stub


def position(text: str, offset: int) -> Json:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return {"line": line, "character": len(text[start:offset].encode("utf-16-le")) // 2}


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: Sequence[float]) -> Json:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3) if values else float("nan"),
    }


@dataclass
class Session:
    """A server on the stub, and the documents typed into."""

    server: RawServer
    stub: StubOpenAI
    next_id: int = 1
    versions: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def open(self, path: Path, text: str) -> str:
        uri = path.as_uri()
        self.versions[uri], self.texts[uri] = 1, text
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        await self.server.notify("textDocument/didOpen", {"textDocument": item})
        return uri

    async def type(self, uri: str, offset: int, chunk: str) -> int:
        """Insert `chunk` at `offset`; the offset after it."""
        text = self.texts[uri]
        at = position(text, offset)
        self.texts[uri] = text[:offset] + chunk + text[offset:]
        self.versions[uri] += 1
        change = {"range": {"start": at, "end": at}, "text": chunk}
        await self.server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": self.versions[uri]},
                "contentChanges": [change],
            },
        )
        return offset + len(chunk)

    async def ask(self, uri: str, offset: int, invoked: bool = True) -> int:
        """Send a completion request at `offset`; its id."""
        id_ = self.new_id()
        await self.server.request(
            id_,
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": position(self.texts[uri], offset),
                "context": {"triggerKind": 1 if invoked else 2},
            },
        )
        return id_

    async def log(self) -> list[Json]:
        answer = await self.server.call(self.new_id(), "coderLsp/completionLog")
        return list(answer["result"])

    async def stats(self) -> Json:
        return dict((await self.server.call(self.new_id(), "coderLsp/engineStats"))["result"])


@contextlib.asynccontextmanager
async def session(root: Path, stub: StubOpenAI, *, probe: bool = False) -> Any:
    env = {"CODER_LSP_LOOP_PROBE_MS": "5"} if probe else {}
    server = RawServer("--profile", "tiny-moe", env=env)
    await server.start()
    try:
        options = {
            "engine": {"backend": "remote", "endpoints": [stub.url]},
            "completion": {"cache": False, "candidates": 1, "maxTokens": 16},
        }
        await server.initialize(options, root=root.as_uri())
        stats = await server.wait_ready(120)
        if stats["state"] != "ready":
            raise SystemExit(f"the server's engine did not start: {stats['reason']}")
        yield Session(server, stub)
    finally:
        await server.stop()


def stages_by_version(log: list[Json], uri: str) -> dict[int, Json]:
    return {e["version"]: e.get("stages", {}) for e in log if e["uri"] == uri}


async def wait_indexed(s: Session, symbol: str = "fill") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = await s.server.call(s.new_id(), "workspace/symbol", {"query": symbol})
        if answer.get("result"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit("the workspace was not indexed in 60 s")


async def type_and_time(
    s: Session, uri: str, offset: int, typed: str, keystrokes_n: int
) -> list[Json]:
    """Type `typed` (again and again) one character a keystroke, each followed by an invoked
    completion answered before the next; per keystroke: round trip and the server's stages."""
    rows: list[Json] = []
    chars = (typed * (keystrokes_n // max(1, len(typed)) + 1))[:keystrokes_n]
    for ch in chars:
        offset = await s.type(uri, offset, ch)
        version = s.versions[uri]
        id_ = await s.ask(uri, offset)
        sent = time.perf_counter()
        await s.server.response(id_, 30)
        rows.append({"version": version, "roundTripMs": (s.server.arrived[id_] - sent) * 1000})
        await asyncio.sleep(0.4 if ch == "\n" else 0.03)
    stages = stages_by_version(await s.log(), uri)
    for row in rows:
        row["stages"] = stages.get(row["version"], {})
        row["serverTotalMs"] = sum(row["stages"].values())
    return rows


async def bare_stub(stub: StubOpenAI, prompts: Sequence[str]) -> list[float]:
    """The stub's own time for these prompts, streamed as the remote engine asks: each request
    one write on a kept-alive connection, the answer read to its end (Content-Length)."""
    parts = urlsplit(stub.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    times: list[float] = []
    try:
        for prompt in prompts:
            body = json.dumps(
                {"model": "m", "prompt": prompt, "max_tokens": 16, "stream": True}
            ).encode()
            head = (
                f"POST {parts.path}/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            headers = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
    return times


async def part_sizes(args: argparse.Namespace) -> Json:
    out: Json = {}
    for lines in args.sizes:
        with stub_workspace() as (root, stub):
            path, text, offset = workspace(root, lines)
            async with session(root, stub) as s:
                await wait_indexed(s)
                uri = await s.open(path, text)
                await asyncio.sleep(1.0)
                rows = await type_and_time(s, uri, offset, TYPED, args.keystrokes)
                log = await s.server.call(s.new_id(), "coderLsp/requestLog")
                prompts = [r["prompt"] for r in log["result"]][-40:]
            baseline = await bare_stub(stub, prompts)
        warm = rows[5:]
        stub_ms = statistics.median(baseline)
        out[str(lines)] = {
            "lines": lines,
            "roundTripMs": summary([r["roundTripMs"] for r in warm]),
            "serverMs": summary([r["serverTotalMs"] - stub_ms for r in warm]),
            "backendMs": summary(
                [sum(r["stages"].get(k, 0.0) for k in BACKEND_STAGES) for r in warm]
            ),
            "stubAloneMs": summary(baseline),
            "stagesP50": stage_medians(warm),
            "contextShare": sum(any(d in p for d in DEFINITIONS) for p in prompts) / len(prompts),
        }
        print(f"{lines} lines: {json.dumps(out[str(lines)])}", flush=True)
    return out


def stage_medians(rows: Sequence[Json]) -> Json:
    names = sorted({k for r in rows for k in r["stages"] if k.endswith(("Ms",)) or True})
    medians: Json = {}
    for name in names:
        values = [r["stages"][name] for r in rows if isinstance(r["stages"].get(name), float)]
        if values:
            medians[name] = round(statistics.median(values), 3)
    return medians


async def part_change(args: argparse.Namespace) -> Json:
    out: Json = {}
    for label, lines, typed in (
        ("100,000 lines", 100_000, TYPED),
        ("10,000 lines, bracket open", 10_000, BRACKET_TYPED),
        ("10,000 lines", 10_000, TYPED),
    ):
        with stub_workspace() as (root, stub):
            path, text, offset = workspace(root, lines)
            async with session(root, stub) as s:
                uri = await s.open(path, text)
                await asyncio.sleep(1.0)
                if typed is BRACKET_TYPED:  # the bracket opens first, then stays open
                    offset = await s.type(uri, offset, "    x = f(")
                rows = await type_and_time(s, uri, offset, typed, args.keystrokes)
        costs = [r["stages"].get("document", float("nan")) for r in rows[5:]]
        out[label] = summary([c for c in costs if c == c])
        print(f"didChange, {label}: {json.dumps(out[label])}", flush=True)
    return out


async def typist(
    s: Session,
    uri: str,
    offset: int,
    until: float,
    rng: random.Random,
    out: Json,
    interval_s: float = 0.1,
) -> None:
    """Type into one document every `interval_s` on average until `until`, cancelling a
    request still pending when the next keystroke comes (as VS Code does)."""
    pending: int | None = None
    waiting: list[asyncio.Task[None]] = []

    async def wait(id_: int, sent: float) -> None:
        answer = await s.server.response(id_, 60)
        if "error" in answer and answer["error"].get("code") == CANCELLED:
            out["cancelled"] += 1
        else:
            out["times"].append((s.server.arrived[id_] - sent) * 1000)

    await asyncio.sleep(rng.uniform(0, interval_s))
    for ch in TYPED * 20:
        if time.monotonic() > until:
            break
        if pending is not None and not s.server.responses.get(pending):
            await s.server.notify("$/cancelRequest", {"id": pending})
        offset = await s.type(uri, offset, ch)
        pending = await s.ask(uri, offset, invoked=False)
        waiting.append(asyncio.create_task(wait(pending, time.perf_counter())))
        await asyncio.sleep(rng.uniform(0.5, 1.5) * interval_s)
    await asyncio.gather(*waiting)


async def part_documents(args: argparse.Namespace) -> Json:
    """N documents open and typed into at once: 10 characters a second in all (one person
    typing, spread over the documents: what many open documents cost), and 10 a second each
    (N people: the server's throughput)."""
    out: Json = {}
    for rate in ("shared", "each"):
        for count in args.documents:
            if rate == "each" and count == 1:
                out[f"each-{count}"] = out[f"shared-{count}"]
                continue
            interval = 0.1 * count if rate == "shared" else 0.1
            with stub_workspace() as (root, stub):
                docs = [workspace(root, 5_000, f"doc{i:02d}.py") for i in range(count)]
                async with session(root, stub) as s:
                    await wait_indexed(s)
                    uris = [await s.open(p, t) for p, t, _ in docs]
                    await asyncio.sleep(2.0)
                    rng = random.Random(count)
                    until = time.monotonic() + args.seconds
                    seen: Json = {"times": [], "cancelled": 0}
                    await asyncio.gather(
                        *(
                            typist(s, uri, offset, until, rng, seen, interval)
                            for uri, (_, _, offset) in zip(uris, docs, strict=True)
                        )
                    )
            key = f"{rate}-{count}"
            out[key] = {**summary(seen["times"]), "cancelled": seen["cancelled"]}
            print(f"{count} documents, {rate}: {json.dumps(out[key])}", flush=True)
    return out


async def part_lag(args: argparse.Namespace) -> Json:
    out: Json = {}
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    body = source[source.index("    def _munge_whitespace") :][:1500]
    for lines in (10_000, 100_000):
        with stub_workspace() as (root, stub):
            path, text, offset = workspace(root, lines)
            async with session(root, stub, probe=True) as s:
                await wait_indexed(s)
                uri = await s.open(path, text)
                await asyncio.sleep(2.0)
                await s.stats()  # the probe's figures start here
                chunks = keystrokes(body)
                delays = schedule(chunks, random.Random(0))
                until = time.monotonic() + args.seconds
                pending = None
                for chunk, delay in zip(chunks, delays, strict=True):
                    if time.monotonic() > until:
                        break
                    await asyncio.sleep(delay)
                    if pending is not None and not s.server.responses.get(pending):
                        await s.server.notify("$/cancelRequest", {"id": pending})
                    offset = await s.type(uri, offset, chunk)
                    pending = await s.ask(uri, offset, invoked=False)
                await asyncio.sleep(1.0)
                lag = (await s.stats()).get("loopLagMs") or {}
        out[str(lines)] = lag
        print(f"loop lag, {lines} lines: {json.dumps(lag)}", flush=True)
    return out


async def part_engine(args: argparse.Namespace) -> Json:
    """tiny-moe: the server's round trip against vLLM's AsyncLLM driven bare in this process
    on the prompts the server sent. One engine at a time (an idle vLLM engine core still
    takes a CPU), alternating server and bare runs, server first and last, so that both
    sides are sampled across the same stretch of time."""
    first, requests = await lsp_engine_run(args)
    lsp_runs, bare_runs = [first], []
    for _ in range(ENGINE_ROUNDS - 1):
        bare = await BareEngine.start()
        try:
            bare_runs.append([await bare.run(request, n) for n, request in enumerate(requests)][5:])
        finally:
            await bare.stop()
        lsp_runs.append((await lsp_engine_run(args))[0])
    lsp = [t for run in lsp_runs for t in run]
    alone = [t for run in bare_runs for t in run]
    out = {
        "requests": len(requests) - 5,
        "lspMs": summary(lsp),
        "bareMs": summary(alone),
        "lspRunsP50": [round(statistics.median(run), 2) for run in lsp_runs],
        "bareRunsP50": [round(statistics.median(run), 2) for run in bare_runs],
        # Each bare run against the two server runs around it: drift over the run cancels.
        "ratioAdjacent": round(
            statistics.mean(
                (statistics.median(lsp_runs[i]) + statistics.median(lsp_runs[i + 1]))
                / 2
                / statistics.median(run)
                for i, run in enumerate(bare_runs)
            ),
            4,
        ),
        "ratioMedian": round(statistics.median(lsp) / statistics.median(alone), 4),
        "ratioTotal": round((sum(lsp) / len(lsp_runs)) / (sum(alone) / len(bare_runs)), 4),
    }
    print(f"engine: {json.dumps(out)}", flush=True)
    return out


async def lsp_engine_run(args: argparse.Namespace) -> tuple[list[float], list[Json]]:
    """Keystrokes into a 5,000-line file on the embedded tiny-moe, each an invoked completion
    answered before the next: round trips (the first 5 left out) and the engine's requests."""
    with tempfile.TemporaryDirectory(prefix="coder-lsp-latency-") as tmp:
        root = Path(tmp)
        path, text, offset = workspace(root, 5_000)
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            options = {"completion": {"cache": False, "candidates": 1, "maxTokens": 16}}
            await server.initialize(options, root=root.as_uri())
            stats = await server.wait_ready(600)
            if stats["state"] != "ready":
                raise SystemExit(f"the engine did not start: {stats['reason']}")
            s = Session(server, StubOpenAI())
            uri = await s.open(path, text)
            await asyncio.sleep(2.0)
            times: list[float] = []
            requests: list[Json] = []
            for ch in (TYPED * 4)[: args.engine_requests]:
                offset = await s.type(uri, offset, ch)
                id_ = await s.ask(uri, offset)
                sent = time.perf_counter()
                await server.response(id_, 60)
                times.append((server.arrived[id_] - sent) * 1000)
                log = (await server.call(s.new_id(), "coderLsp/requestLog"))["result"]
                requests.append(log[-1])
                await asyncio.sleep(0.03)
        finally:
            await server.stop()
    return times[5:], requests


class BareEngine:
    """vLLM's AsyncLLM in this process, built with the engine arguments the server uses."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @classmethod
    async def start(cls) -> BareEngine:
        from engine.profiles import get_profile, prepare_model
        from engine.vllm_engine import EmbeddedVLLMEngine
        from lsp_server.config import Settings
        from lsp_server.engine_host import engine_options

        profile = get_profile("tiny-moe")
        model = profile.completion_model
        engine = EmbeddedVLLMEngine(
            model, engine_options(profile, Settings()), prepare=lambda p: prepare_model(model, p)
        )
        await engine.start()
        if engine.llm is None:
            raise SystemExit(f"bare AsyncLLM did not start: {engine.state.reason}")
        return cls(engine)

    async def run(self, request: Json, n: int) -> float:
        """One prompt, greedy, for as many tokens as the server's generation made (ms)."""
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=max(1, request["tokens"]),
            temperature=0.0,
            ignore_eos=True,
            skip_special_tokens=False,
        )
        started = time.perf_counter()
        async for _ in self.engine.llm.generate(request["prompt"], params, f"bare-{n}"):
            pass
        return (time.perf_counter() - started) * 1000

    async def stop(self) -> None:
        await self.engine.shutdown()
        self.engine = None
        gc.collect()  # AsyncLLM's own finalizer, now rather than at interpreter exit


PARTS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "sizes": part_sizes,
    "change": part_change,
    "documents": part_documents,
    "lag": part_lag,
    "engine": part_engine,
}


def section(result: Json, machine: str) -> str:
    by_command: dict[str, list[str]] = {}
    for part in PARTS:
        if part in result:
            command = result.get("commands", {}).get(part, result.get("command", ""))
            by_command.setdefault(command, []).append(part)
    commands = "; ".join(f"`{c}` ({', '.join(parts)})" for c, parts in by_command.items())
    lines = [
        SECTION,
        "",
        (__doc__ or "").split("\n\n    .venv")[0].split("\n", 1)[1].strip(),
        "",
        f"- Machine: {machine}",
        f"- Commands: {commands}",
        "",
    ]
    if sizes := result.get("sizes"):
        lines += [
            "| document | round trip p50 / p99 | server share p50 / p95 / p99 | engine stages p50 "
            "| stub alone p50 | prompts with context |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in sizes.values():
            rt, sv, be, st = (
                row["roundTripMs"],
                row["serverMs"],
                row["backendMs"],
                row["stubAloneMs"],
            )
            lines.append(
                f"| {row['lines']:,} lines | {rt['p50']:.2f} / {rt['p99']:.2f} ms | "
                f"**{sv['p50']:.2f}** / {sv['p95']:.2f} / **{sv['p99']:.2f}** ms | "
                f"{be['p50']:.2f} ms | {st['p50']:.2f} ms | {row['contextShare']:.0%} |"
            )
        lines += [
            "",
            "Engine stages: `engineQueue` + `firstToken` + `generation` as the server times "
            "them (its HTTP client included); the stub alone is the backend's own time.",
            "",
            "Median of each stage (ms), as the server timed it:",
            "",
        ]
        names = sorted({k for row in sizes.values() for k in row["stagesP50"]})
        lines.append("| stage | " + " | ".join(f"{r['lines']:,}" for r in sizes.values()) + " |")
        lines.append("| --- |" + " --- |" * len(sizes))
        for name in names:
            lines.append(
                f"| {name} | "
                + " | ".join(str(r["stagesP50"].get(name, "")) for r in sizes.values())
                + " |"
            )
        lines.append("")
    if change := result.get("change"):
        lines += [
            "A one-character `didChange`, its cost in the server:",
            "",
            "| document | p50 | p95 | max |",
            "| --- | --- | --- | --- |",
        ]
        for label, row in change.items():
            lines.append(
                f"| {label} | {row['p50']:.3f} ms | **{row['p95']:.3f} ms** | {row['max']:.3f} ms |"
            )
        lines.append("")
    if docs := result.get("documents"):
        one = docs.get("shared-1", {}).get("p95")
        lines += [
            "Documents open and typed into at once (5,000 lines each, an automatic completion "
            "per keystroke): 10 characters a second in all, spread over them (one person), and "
            "10 a second each (as many people; the server's throughput):",
            "",
            "| documents | typing | requests answered | cancelled | p50 | p95 | p99 "
            "| p95 / one document's |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, row in docs.items():
            rate, _, count = key.partition("-")
            if rate == "each" and count == "1":
                continue
            ratio = f"{row['p95'] / one:.2f}" if one else ""
            speed = "10/s in all" if rate == "shared" else "10/s each"
            lines.append(
                f"| {count} | {speed} | {row['n']:,} | {row['cancelled']:,} | "
                f"{row['p50']:.2f} ms | {row['p95']:.2f} ms | {row['p99']:.2f} ms | **{ratio}** |"
            )
        lines.append("")
    if lag := result.get("lag"):
        lines += [
            "Event-loop lag during a typing replay (the server's probe: a 5 ms timer's lateness):",
            "",
            "| document | samples | p99 | max |",
            "| --- | --- | --- | --- |",
        ]
        for count, row in lag.items():
            lines.append(
                f"| {int(count):,} lines | {row.get('samples', 0):,} | {row.get('p99', 0):.2f} ms "
                f"| **{row.get('max', 0):.2f} ms** |"
            )
        lines.append("")
    if engine := result.get("engine"):
        lines += [
            "tiny-moe embedded: through the server against bare `AsyncLLM` in one process, "
            "same prompts and sampling, runs alternating server and bare (medians per run: "
            f"server {engine['lspRunsP50']}, bare {engine.get('bareRunsP50', [])} ms):",
            "",
            "| | requests | p50 | p95 |",
            "| --- | --- | --- | --- |",
            f"| through LSP | {engine['lspMs']['n']} | {engine['lspMs']['p50']:.1f} ms | "
            f"{engine['lspMs']['p95']:.1f} ms |",
            f"| bare AsyncLLM | {engine['bareMs']['n']} | {engine['bareMs']['p50']:.1f} ms | "
            f"{engine['bareMs']['p95']:.1f} ms |",
            "",
            f"Ratio **{engine.get('ratioAdjacent', engine['ratioMedian']):.3f}** (each bare "
            "run's median against the mean of the two server runs around it, averaged: drift "
            f"cancels); of all medians {engine['ratioMedian']:.3f}, of totals "
            f"{engine['ratioTotal']:.3f}.",
            "",
        ]
    lines += ["![latency](latency.png)", "", f"Raw results: `bench/results/{OUTPUT.name}`.", ""]
    return "\n".join(lines)


def plot(result: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    sizes = result.get("sizes", {})
    if sizes:
        xs = [row["lines"] for row in sizes.values()]
        for key, label in (("p50", "p50"), ("p99", "p99")):
            left.plot(
                xs,
                [row["serverMs"][key] for row in sizes.values()],
                marker="o",
                label=f"server share {label}",
            )
        left.plot(
            xs,
            [row["backendMs"]["p50"] for row in sizes.values()],
            marker="x",
            label="engine stages p50",
        )
        left.set_xscale("log")
        left.set_ylim(bottom=0)
        left.set_xlabel("document lines")
        left.set_ylabel("ms")
        left.set_title("per keystroke, one document")
        left.legend()
    docs = result.get("documents", {})
    if docs:
        for rate, style in (("shared", "-"), ("each", "--")):
            rows = {int(k.partition("-")[2]): v for k, v in docs.items() if k.startswith(rate)}
            xs = sorted(rows)
            for key in ("p50", "p95"):
                right.plot(
                    xs, [rows[x][key] for x in xs], style, marker="o", label=f"{key}, 10/s {rate}"
                )
        right.set_yscale("log")
        right.set_xlabel("documents typed at once")
        right.set_ylabel("round trip (ms)")
        right.set_title("concurrent documents")
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def run(args: argparse.Namespace) -> Json:
    result: Json = {}
    for name in args.parts:
        result[name] = await PARTS[name](args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 5_000, 100_000])
    parser.add_argument("--documents", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--keystrokes", type=int, default=150)
    parser.add_argument("--engine-requests", type=int, default=45)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument(
        "--readme-only", action="store_true", help="write the README from the last results"
    )
    args = parser.parse_args(argv)
    if args.readme_only:
        merged = json.loads(OUTPUT.read_text())
        replace_section(README, SECTION, section(merged, merged["machine"]))
        plot(merged, PLOT)
        return 0
    machine = describe()
    result = asyncio.run(run(args))
    OUTPUT.parent.mkdir(exist_ok=True)
    previous = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else {}
    command = " ".join([".venv/bin/python bench/latency.py", *map(shlex.quote, sys.argv[1:])])
    commands = {part: previous.get("command", "") for part in PARTS if part in previous}
    commands |= previous.get("commands", {}) | dict.fromkeys(result, command)
    merged = {**previous, **result, "machine": machine, "command": command, "commands": commands}
    OUTPUT.write_text(json.dumps(merged, indent=1) + "\n")
    if args.write_readme:
        replace_section(README, SECTION, section(merged, machine))
        plot(merged, PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
