"""Completion quality on HumanEval infilling, through the real server over LSP.

For each task of the single-line and multi-line infilling sets, open the document
``prompt + "\\n" + suffix`` in ``coder-lsp serve --stdio`` (the cursor on the empty line
between them), ask for an inline completion (automatic trigger on the single-line set,
invoked on the multi-line set), run ``prompt + completion + "\\n" + suffix + test`` in a
sandbox, and count passes (pass@1: the first item only), exact matches and the client's latency. Two
configurations, each its own server process, one after the other, on the same tasks:

* ``baseline``: post-processing off (``completion.postprocess = false``): the model's raw
  text, cut only by the token limit and the template's stop tokens, as a naive client shows;
* ``pipeline``: the full pipeline (gate and post-processing); one greedy sample on the
  single-line set (automatic trigger), ``--candidates-multi`` samples ranked by the server
  on the multi-line set (invoked trigger), as an editor gets them.

Both run without repository context and without the suggestion cache, so tasks never answer
each other. Raw per-task results go to a JSON file; a rerun skips the tasks already there
(same configuration, set and settings), and ``--report-only`` rebuilds the README section
and the plot from it. The model-free recovery check (``bench/recovery.py``) runs on all tasks.

    .venv/bin/python bench/quality.py [--limit 100] [--seed 0] [--sets single,multi]
        [--configs baseline,pipeline] [--profile cpu-small] [--report-only]
"""

from __future__ import annotations

import os
import sys

# Run as a script, bench/ is first on sys.path: put the repository root there instead, so
# that `bench.*` imports work both ways (script and package, as the unit tests import it).
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import asyncio
import codecs
import contextlib
import gzip
import importlib
import json
import logging
import math
import random
import shlex
import signal
import statistics
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import describe, replace_section
from bench.sandbox import Limits, run_many

ROOT = Path(__file__).resolve().parent.parent

HERE = Path(__file__).resolve().parent
DATA = Path("/work/shared/data/human-eval-infilling")
README = HERE / "README.md"
OUTPUT = HERE / "results" / "quality.json"
SECTION = "## Completion quality"
CONFIGS = ("baseline", "pipeline")
RESAMPLES = 10_000
AUTOMATIC = 2  # InlineCompletionTriggerKind
INVOKED = 1
FORMAT_VERSION = 1

Row = dict[str, Any]
Entry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SetSpec:
    name: str
    file: str
    trigger: int
    """InlineCompletionTriggerKind: 2 automatic, 1 invoked."""
    title: str


SETS: dict[str, SetSpec] = {
    "single": SetSpec("single", "HumanEval-SingleLineInfilling.jsonl.gz", AUTOMATIC, "single-line"),
    "multi": SetSpec("multi", "HumanEval-MultiLineInfilling.jsonl.gz", INVOKED, "multi-line"),
}
RECOVERY_SETS = {"single": "single-line", "multi": "multi-line"}


# --- tasks --------------------------------------------------------------------------------


def load_rows(path: Path) -> list[Row]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def sample(rows: Sequence[Row], limit: int, seed: int) -> list[Row]:
    """`limit` rows drawn with `random.Random(seed)` over the whole set, in the set's order
    (all rows when `limit` is 0 or at least the set's size)."""
    if limit <= 0 or limit >= len(rows):
        return list(rows)
    chosen = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


@dataclass(frozen=True, slots=True)
class Document:
    uri: str
    text: str
    line: int
    character: int
    """UTF-16 code units, as LSP counts them."""


def document(row: Row) -> Document:
    """The editor's view of a task: prompt, an empty line with the cursor, then the suffix."""
    prompt = row["prompt"]
    lines = prompt.split("\n")
    name = row["task_id"].replace("/", "_")
    return Document(
        uri=f"file:///humaneval/{name}.py",
        text=prompt + "\n" + row["suffix"],
        line=len(lines) - 1,
        character=len(lines[-1].encode("utf-16-le")) // 2,
    )


def program(row: Row, text: str) -> str:
    """The program that passes if `text` is a correct infill."""
    prompt, suffix, test = str(row["prompt"]), str(row["suffix"]), str(row["test"])
    return prompt + text + "\n" + suffix + "\n" + test + f"\ncheck({row['entry_point']})\n"


def exact(row: Row, text: str) -> bool:
    solution: str = row["canonical_solution"]
    return text.rstrip() == solution.rstrip()


def options(config: str, max_tokens: int, candidates: int = 1) -> dict[str, Any]:
    """The `completion` settings of a configuration (sent as initializationOptions).

    ``candidates`` matters only where the trigger is invoked (the multi-line set)."""
    if config == "baseline":
        # The cache is off here too: tasks of one HumanEval problem share prefixes and
        # suffixes, so a cached suggestion could otherwise answer a later task.
        return {
            "completion": {
                "postprocess": False,
                "maxTokens": max_tokens,
                "contextTokens": 0,
                "cache": False,
            }
        }
    if config == "pipeline":
        return {
            "completion": {
                "maxTokens": max_tokens,
                "contextTokens": 0,
                "candidates": candidates,
                "cache": False,
            }
        }
    raise ValueError(f"unknown configuration {config!r}; known: {', '.join(CONFIGS)}")


def run_key(config: str, set_name: str, profile: str, settings: Mapping[str, Any]) -> str:
    """Results of one configuration on one set under the same settings share this key."""
    return f"{config}|{set_name}|{profile}|{json.dumps(settings, sort_keys=True)}"


# --- results file -------------------------------------------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") == FORMAT_VERSION:
            data.setdefault("runs", {})
            data.setdefault("canonical", {})
            data.setdefault("meta", {})
            return data
        print(f"{path}: unknown format, starting afresh", file=sys.stderr)
    return {"version": FORMAT_VERSION, "runs": {}, "canonical": {}, "meta": {}}


def save_results(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_record(
    data: dict[str, Any],
    key: str,
    config: str,
    spec: SetSpec,
    profile: str,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    runs: dict[str, Any] = data["runs"]
    if key not in runs:
        runs[key] = {
            "config": config,
            "set": spec.name,
            "profile": profile,
            "settings": dict(settings),
            "trigger": spec.trigger,
            "model": "",
            "warnings": [],
            "tasks": {},
        }
    record: dict[str, Any] = runs[key]
    return record


# --- talking to the server ----------------------------------------------------------------


class ServerError(Exception):
    """The server could not be started, or died."""


def plain(value: Any) -> Any:
    """pygls' objects for untyped responses (named tuples) as plain dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(slots=True)
class Answer:
    text: str
    latency_ms: float | None
    error: str | None = None


class Server:
    """One `coder-lsp serve --stdio` process driven through pygls' LanguageClient."""

    def __init__(
        self, profile: str, init_options: Mapping[str, Any], log_path: Path, load_timeout: float
    ) -> None:
        self.profile = profile
        self.init_options = dict(init_options)
        self.log_path = log_path
        self.load_timeout = load_timeout
        self.client: Any = None
        self.stats: dict[str, Any] = {}
        self.messages: list[str] = []
        """Warnings and errors the server showed (settings problems among them)."""
        self.stderr_tail: deque[str] = deque(maxlen=30)
        self._drain: asyncio.Task[None] | None = None
        self.pid: int | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "lsp_server", "serve", "--stdio", "--profile", self.profile]

    async def start(self) -> dict[str, Any]:
        """Start the server and wait for the engine; the engine's stats once it is ready."""
        from lsprotocol import types
        from pygls.lsp.client import LanguageClient

        client = LanguageClient("coder-lsp-quality", "1")
        self.client = client

        def on_message(params: types.ShowMessageParams) -> None:
            if params.type in (types.MessageType.Error, types.MessageType.Warning):
                self.messages.append(params.message)
                print(f"  [server says] {params.message}", file=sys.stderr)

        def ignore(params: Any) -> None:
            return None

        client.feature(types.WINDOW_SHOW_MESSAGE)(on_message)
        client.feature(types.WINDOW_LOG_MESSAGE)(ignore)
        client.feature("coderLsp/status")(ignore)
        logging.getLogger("pygls").setLevel(logging.ERROR)

        started = time.perf_counter()
        # A session of its own: the server's process group then holds vLLM's engine
        # processes too, which stop() can find and end even if the server was killed.
        await client.start_io(*self.command(), start_new_session=True)
        process = client._server
        self.pid = process.pid if process is not None else None
        if process is not None and process.stderr is not None:
            self._drain = asyncio.create_task(self._drain_stderr(process.stderr))
        await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(
                    capabilities=types.ClientCapabilities(
                        text_document=types.TextDocumentClientCapabilities(
                            inline_completion=types.InlineCompletionClientCapabilities()
                        )
                    ),
                    process_id=os.getpid(),
                    root_uri=None,
                    initialization_options=self.init_options,
                )
            ),
            120,
        )
        client.initialized(types.InitializedParams())
        deadline = time.monotonic() + self.load_timeout
        while True:
            if not self.alive():
                raise ServerError(f"the server exited while loading: {self.last_words()}")
            stats = await self.engine_stats()
            if stats.get("state") == "ready":
                break
            if stats.get("state") == "failed":
                raise ServerError(f"the engine failed to load: {stats.get('reason')}")
            if time.monotonic() > deadline:
                raise ServerError(f"the engine did not load in {self.load_timeout:.0f} s")
            await asyncio.sleep(0.5)
        self.stats = stats
        print(
            f"  engine ready after {time.perf_counter() - started:.1f} s: {stats.get('model')}",
            file=sys.stderr,
        )
        return stats

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        """Keep the server's stderr flowing (a full pipe would stall it) into the log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8", errors="replace") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(self.command())}\n")
            partial = ""
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            # Chunks, not readline(): one logged message can be longer than a line may be.
            while chunk := await stream.read(1 << 16):
                text = decoder.decode(chunk)
                log.write(text)
                log.flush()
                *lines, partial = (partial + text).split("\n")
                partial = partial[-4096:]
                self.stderr_tail.extend(line[:2000] for line in lines if line.strip())

    def last_words(self) -> str:
        """The server's last lines on stderr, without pygls' message dumps."""
        lines = [line for line in self.stderr_tail if "pygls.protocol" not in line]
        words = " | ".join(lines[-3:]) or "(nothing on stderr)"
        return words if len(words) <= 400 else "..." + words[-397:]

    def alive(self) -> bool:
        process = self.client._server if self.client is not None else None
        return process is not None and process.returncode is None

    def died(self) -> str:
        process = self.client._server if self.client is not None else None
        code = process.returncode if process is not None else None
        return f"server died (exit status {code}): {self.last_words()}"

    def group(self) -> list[int]:
        """Live processes of the server's process group (the server, vLLM's engine core and
        workers), read from /proc."""
        if self.pid is None:
            return []
        members = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == self.pid:
                members.append(int(entry.name))
        return members

    async def end_group(self, grace: float = 10.0) -> None:
        """End what is left of the server's process group, by process id: SIGTERM, then
        SIGKILL after `grace` seconds. (A killed server leaves vLLM's engine processes
        running, and holding the server's pipes open.)"""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            members = self.group()
            if not members:
                return
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self.group() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)

    async def request(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        return plain(
            await asyncio.wait_for(
                asyncio.shield(self.client.protocol.send_request_async(method, params)), timeout
            )
        )

    async def engine_stats(self) -> dict[str, Any]:
        stats = await self.request("coderLsp/engineStats", None)
        return stats if isinstance(stats, dict) else {}

    async def configure(self, settings: Mapping[str, Any]) -> None:
        """Change the completion settings (maxTokens differs between the sets); the
        round trip after it makes sure the server applied them before the next request."""
        from lsprotocol import types

        self.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"coderLsp": dict(settings)})
        )
        await self.engine_stats()

    async def complete(self, doc: Document, trigger: int, timeout: float) -> Answer:
        """didOpen, one inline completion request (timed), didClose."""
        from lsprotocol import types

        if not self.alive():
            return Answer("", None, self.died())
        client = self.client
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=doc.uri, language_id="python", version=1, text=doc.text
                )
            )
        )
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=doc.uri),
            position=types.Position(line=doc.line, character=doc.character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind(trigger)
            ),
        )
        started = time.perf_counter()
        future = asyncio.ensure_future(client.text_document_inline_completion_async(params))
        # An answer that comes too late (or the failure pygls sets when the server exits)
        # must not be reported as never retrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            while not future.done():
                left = started + timeout - time.perf_counter()
                if left <= 0:
                    return Answer("", None, f"timeout after {timeout:g} s")
                await asyncio.wait({future}, timeout=min(1.0, left))
                if not future.done() and not self.alive():
                    return Answer("", None, self.died())
            latency = (time.perf_counter() - started) * 1000
            answer = future.result()
        except Exception as exc:  # the server died, or answered with an error
            reason = f"{type(exc).__name__}: {exc}"
            return Answer("", None, reason if self.alive() else self.died())
        finally:
            if self.alive():
                client.text_document_did_close(
                    types.DidCloseTextDocumentParams(
                        text_document=types.TextDocumentIdentifier(uri=doc.uri)
                    )
                )
        items = answer.items if isinstance(answer, types.InlineCompletionList) else answer or []
        text = items[0].insert_text if items else ""
        return Answer(text if isinstance(text, str) else text.value, latency)

    async def completion_log(self) -> list[dict[str, Any]]:
        """The server's record of its latest completions (source, reason), if it has one."""
        try:
            log = await self.request("coderLsp/completionLog", None)
        except Exception:
            return []
        return [e for e in log if isinstance(e, dict)] if isinstance(log, list) else []

    async def settle(self, timeout: float = 30.0) -> bool:
        """After a timed-out request: wait for the server to have nothing in flight."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            try:
                stats = await self.engine_stats()
            except Exception:
                return False
            if not stats.get("inflightCompletions") and not stats.get("unfinishedRequests"):
                return True
            await asyncio.sleep(0.5)
        return False

    async def stop(self) -> None:
        """shutdown, exit, wait for the process; then end whatever is left of its group."""
        client = self.client
        if client is None:
            return
        try:
            if self.alive():
                await asyncio.wait_for(asyncio.shield(client.shutdown_async(None)), 60)
                client.exit(None)
                deadline = time.monotonic() + 30
                while self.alive() and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
        except Exception as exc:
            print(f"  the server did not shut down cleanly ({exc!r})", file=sys.stderr)
        if self.group():
            print("  ending the server's remaining processes", file=sys.stderr)
            await self.end_group()
        try:
            await asyncio.wait_for(asyncio.shield(client.stop()), 15)
        except Exception as exc:
            print(f"  the client did not stop cleanly ({exc!r})", file=sys.stderr)
        if self._drain is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._drain), 10)
            except Exception:
                self._drain.cancel()
        self.client = None


# --- generation ---------------------------------------------------------------------------


@dataclass(slots=True)
class Job:
    """One configuration on one set: its tasks and where their results go."""

    spec: SetSpec
    rows: list[Row]
    settings: dict[str, Any]
    record: dict[str, Any]


def pending(job: Job, retry_errors: bool) -> list[Row]:
    tasks = job.record["tasks"]
    return [
        row
        for row in job.rows
        if row["task_id"] not in tasks or (retry_errors and tasks[row["task_id"]].get("error"))
    ]


async def start_server(
    profile: str, settings: Mapping[str, Any], args: argparse.Namespace
) -> Server:
    """A ready server; three failed starts in a row end the run."""
    for attempt in range(1, 4):
        server = Server(profile, settings, args.server_log, args.load_timeout)
        try:
            await server.start()
            return server
        except (ServerError, TimeoutError, OSError, RuntimeError) as exc:
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, ServerError) and not server.alive():
                await asyncio.sleep(0.5)  # let the stderr reader catch the last lines
                reason += f": {server.last_words()}"
            print(f"  server start {attempt} failed: {reason}", file=sys.stderr)
            await server.stop()
    raise ServerError(f"the server failed to start three times; last: {reason}")


async def generate(
    profile: str,
    jobs: list[Job],
    args: argparse.Namespace,
    save: Any,
) -> None:
    """Ask one server for every pending task of `jobs`, in order. A server that dies is
    restarted (its task counts as failed); three deaths in a row end the run."""
    todo = [(job, pending(job, args.retry_errors)) for job in jobs]
    if not any(rows for _, rows in todo):
        return
    server: Server | None = None
    configured: Mapping[str, Any] | None = None
    deaths = 0
    try:
        for job, rows in todo:
            done = len(job.rows) - len(rows)
            since_log: dict[str, str] = {}
            for row in rows:
                if server is None or not server.alive():
                    if server is not None:
                        await server.stop()
                    if deaths >= 3:
                        raise ServerError("the server died on three tasks in a row; giving up")
                    server = await start_server(profile, job.settings, args)
                    configured = job.settings
                if configured != job.settings:
                    await server.configure(job.settings)
                    configured = job.settings
                job.record["model"] = server.stats.get("model", "")
                doc = document(row)
                answer = await server.complete(doc, job.spec.trigger, args.request_timeout)
                done += 1
                entry: Entry = {
                    "text": answer.text,
                    "latency_ms": None
                    if answer.latency_ms is None
                    else round(answer.latency_ms, 1),
                    "error": answer.error,
                    "exact": answer.error is None and exact(row, answer.text),
                }
                if answer.error is None:
                    deaths = 0
                    since_log[doc.uri] = row["task_id"]
                else:
                    entry["passed"] = False
                    entry["outcome"] = f"not run: {answer.error}"
                    if not server.alive():
                        deaths += 1
                    elif not await server.settle():
                        print("  server still busy after a timeout; restarting", file=sys.stderr)
                        await server.stop()
                        server = None
                job.record["tasks"][row["task_id"]] = entry
                for message in server.messages if server is not None else []:
                    message = message.split("; known settings here")[0]
                    if message not in job.record["warnings"]:
                        job.record["warnings"].append(message)
                shown = answer.text.replace("\n", "\\n")
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                took = "-" if answer.latency_ms is None else f"{answer.latency_ms:.0f} ms"
                print(
                    f"[{job.record['config']} {job.spec.name} {done}/{len(job.rows)}] "
                    f"{row['task_id']} {took} {answer.error or repr(shown)}",
                    file=sys.stderr,
                )
                if (
                    server is not None
                    and server.alive()
                    and (len(since_log) >= 200 or row is rows[-1])
                ):
                    await _note_sources(server, job, since_log)
                save()
    finally:
        if server is not None:
            await server.stop()


async def _note_sources(server: Server, job: Job, uris: dict[str, str]) -> None:
    """Where each answer came from ("engine", "gate"...) and why it was empty, from the
    server's completion log."""
    if not uris:
        return
    for entry in await server.completion_log():
        task_id = uris.get(entry.get("uri", ""))
        if task_id is not None and task_id in job.record["tasks"]:
            job.record["tasks"][task_id]["source"] = entry.get("source", "")
            if entry.get("reason"):
                job.record["tasks"][task_id]["reason"] = entry["reason"]
    uris.clear()


def execute(jobs: Iterable[Job], limits: Limits, workers: int) -> int:
    """Run the programs of the generated tasks not yet run; how many were run."""
    work: list[tuple[Entry, str]] = []
    for job in jobs:
        by_id = {row["task_id"]: row for row in job.rows}
        for task_id, entry in job.record["tasks"].items():
            if "passed" not in entry and task_id in by_id:
                work.append((entry, program(by_id[task_id], entry["text"])))
    outcomes = run_many([source for _, source in work], limits, workers)
    for (entry, _), outcome in zip(work, outcomes, strict=True):
        entry["passed"] = outcome.passed
        entry["outcome"] = outcome.reason
        entry["exec_s"] = round(outcome.seconds, 3)
    return len(work)


def check_canonical(
    data: dict[str, Any], spec: SetSpec, rows: list[Row], limits: Limits, workers: int
) -> None:
    """The sandbox must pass the canonical solutions; kept per task in the results file."""
    done: dict[str, Any] = data["canonical"].setdefault(spec.name, {})
    todo = [row for row in rows if row["task_id"] not in done]
    outcomes = run_many([program(row, row["canonical_solution"]) for row in todo], limits, workers)
    for row, outcome in zip(todo, outcomes, strict=True):
        done[row["task_id"]] = outcome.reason


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (as the other benchmarks report it); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def paired_bootstrap(
    base: Sequence[float],
    other: Sequence[float],
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``other - base`` over paired tasks and its percentile bootstrap interval
    (tasks resampled with replacement, `resamples` times, seeded)."""
    import numpy as np

    if len(base) != len(other):
        raise ValueError("paired samples must have the same length")
    n = len(base)
    if n == 0:
        return math.nan, math.nan, math.nan
    diffs = np.asarray(other, dtype=float) - np.asarray(base, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diffs[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(diffs.mean()), float(lo), float(hi)


def config_stats(entries: Sequence[Entry]) -> dict[str, Any]:
    """pass@1, exact match, latency and what went wrong, over one configuration's tasks."""
    n = len(entries)
    latencies = [e["latency_ms"] for e in entries if e.get("latency_ms") is not None]
    passed = sum(bool(e.get("passed")) for e in entries)
    exacts = sum(bool(e.get("exact")) for e in entries)
    return {
        "n": n,
        "passed": passed,
        "pass@1": passed / n if n else math.nan,
        "exact": exacts / n if n else math.nan,
        "median_ms": statistics.median(latencies) if latencies else math.nan,
        "p95_ms": percentile(latencies, 0.95),
        "empty": sum(1 for e in entries if not e.get("error") and not e.get("text")),
        "errors": sum(1 for e in entries if e.get("error")),
        "unrun": sum(1 for e in entries if "passed" not in e),
        "sources": dict(Counter(e["source"] for e in entries if e.get("source"))),
    }


def summarize(
    runs: Mapping[str, Mapping[str, Any]],
    keys: Mapping[tuple[str, str], str],
    samples: Mapping[str, Sequence[str]],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> dict[str, Any]:
    """Per set: each configuration's figures over the sampled tasks it has results for, and
    the paired difference pipeline - baseline of pass@1 over the tasks both have."""
    sets: dict[str, Any] = {}
    for set_name, task_ids in samples.items():
        configs: dict[str, Any] = {}
        results: dict[str, dict[str, Entry]] = {}
        for (config, name), key in keys.items():
            if name != set_name:
                continue
            tasks = runs.get(key, {}).get("tasks", {})
            results[config] = {t: tasks[t] for t in task_ids if t in tasks}
            configs[config] = config_stats(list(results[config].values()))
        diff: dict[str, Any] | None = None
        if "baseline" in results and "pipeline" in results:
            both = [
                t
                for t in task_ids
                if t in results["baseline"]
                and t in results["pipeline"]
                and "passed" in results["baseline"][t]
                and "passed" in results["pipeline"][t]
            ]
            base = [float(results["baseline"][t]["passed"]) for t in both]
            pipe = [float(results["pipeline"][t]["passed"]) for t in both]
            mean, lo, hi = paired_bootstrap(base, pipe, resamples, seed)
            diff = {
                "n": len(both),
                "diff": mean,
                "lo": lo,
                "hi": hi,
                "better": sum(p > b for b, p in zip(base, pipe, strict=True)),
                "worse": sum(p < b for b, p in zip(base, pipe, strict=True)),
            }
        sets[set_name] = {"sampled": len(task_ids), "configs": configs, "diff": diff}
    return sets


# --- recovery (model-free) ----------------------------------------------------------------


def recovery_figures(rows_by_set: Mapping[str, Sequence[Row]]) -> dict[str, Any] | str:
    """`bench.recovery.recovery(rows)` per set, or why it is not available."""
    try:
        module = importlib.import_module("bench.recovery")
        func = module.recovery
    except (ImportError, AttributeError) as exc:
        return f"not available ({exc})"
    figures: dict[str, Any] = {}
    for set_name, rows in rows_by_set.items():
        try:
            result = func(list(rows))
        except Exception as exc:
            return f"not available (recovery() failed: {type(exc).__name__}: {exc})"
        if not isinstance(result, Mapping):
            return f"not available (unexpected result {type(result).__name__})"
        figures[set_name] = dict(result)
    return figures


def recovery_rates(result: Mapping[str, Any]) -> tuple[int | None, dict[str, float], Any]:
    """(tasks, rate per variant, overall) from one set's recovery result, whatever its shape:
    a ``rates`` mapping, or numbers at the top level."""
    tasks = result.get("tasks")
    rates = result.get("rates")
    if not isinstance(rates, Mapping):
        rates = {
            k: v
            for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("tasks",)
        }
    clean = {str(k): float(v) for k, v in rates.items() if isinstance(v, int | float)}
    overall = result.get("overall")
    clean.pop("overall", None)
    return (tasks if isinstance(tasks, int) else None), clean, overall


# --- reporting ----------------------------------------------------------------------------


def pct(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.{digits}f}%"


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} ms"


def signed_points(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:+.1f}"


def diff_text(diff: Mapping[str, Any] | None) -> str:
    if diff is None or not diff["n"]:
        return "n/a"
    return (
        f"{signed_points(diff['diff'])} pts "
        f"[{signed_points(diff['lo'])}, {signed_points(diff['hi'])}]"
    )


def console_table(summary: Mapping[str, Any]) -> str:
    """The figures as a plain-text table."""
    lines = [
        f"{'set':<7} {'config':<9} {'n':>5} {'pass@1':>8} {'exact':>7} {'median':>10} "
        f"{'p95':>10} {'empty':>6} {'errors':>6}"
    ]
    for set_name, figures in summary.items():
        for config, s in figures["configs"].items():
            lines.append(
                f"{set_name:<7} {config:<9} {s['n']:>5} {pct(s['pass@1']):>8} "
                f"{pct(s['exact']):>7} {ms(s['median_ms']):>10} {ms(s['p95_ms']):>10} "
                f"{s['empty']:>6} {s['errors']:>6}"
            )
        diff = figures["diff"]
        if diff is not None:
            lines.append(
                f"{set_name:<7} {'diff':<9} {diff['n']:>5} pipeline - baseline pass@1: "
                f"{diff_text(diff)} (95% bootstrap), pipeline better on {diff['better']}, "
                f"worse on {diff['worse']}"
            )
    return "\n".join(lines)


def recovery_markdown(recovery: Mapping[str, Any] | str) -> str:
    if isinstance(recovery, str):
        return f"Model-free recovery (`bench/recovery.py`): {recovery}.\n"
    parsed = {name: recovery_rates(result) for name, result in recovery.items()}
    variants: list[str] = []
    for _, rates, _ in parsed.values():
        variants += [v for v in rates if v not in variants]
    head = "| set | tasks | " + " | ".join(f"`{v}`" for v in variants) + " | overall |"
    rule = "| --- | ---: |" + " ---: |" * len(variants) + " ---: |"
    rows = []
    for name, (tasks, rates, overall) in parsed.items():
        cells = [pct(rates[v]) if v in rates else "" for v in variants]
        total = pct(float(overall)) if isinstance(overall, int | float) else ""
        rows.append(
            f"| {SETS[name].title if name in SETS else name} | "
            f"{tasks if tasks is not None else ''} | " + " | ".join(cells) + f" | {total} |"
        )
    return (
        "Model-free recovery (`bench/recovery.py`, all tasks of each set): the canonical "
        "solution followed by typical over-generation, passed through the post-processing; "
        "the share turned back into exactly the canonical solution.\n\n"
        + "\n".join([head, rule, *rows])
        + "\n"
    )


def markdown(
    summary: Mapping[str, Any],
    meta: Mapping[str, Any],
    recovery: Mapping[str, Any] | str,
    plot_link: str | None,
) -> str:
    """The README section."""
    settings = meta.get("settings", {})
    setting_lines = "\n".join(
        f"  - {config}: "
        + "; ".join(
            f"{SETS[name].title if name in SETS else name} `{json.dumps(s)}`"
            for name, s in per_set.items()
        )
        for config, per_set in settings.items()
    )
    sizes = ", ".join(
        f"{SETS[name].title if name in SETS else name}: {figures['sampled']} of "
        f"{meta.get('set_sizes', {}).get(name, '?')}"
        for name, figures in summary.items()
    )
    pass_rows = []
    detail_rows = []
    for name, figures in summary.items():
        title = SETS[name].title if name in SETS else name
        configs = figures["configs"]
        base, pipe = configs.get("baseline"), configs.get("pipeline")
        diff = figures["diff"]
        pass_rows.append(
            f"| {title} | {figures['sampled']} | "
            f"{pct(base['pass@1']) if base else 'n/a'} | "
            f"{pct(pipe['pass@1']) if pipe else 'n/a'} | {diff_text(diff)} | "
            + (f"{diff['better']} / {diff['worse']} |" if diff else "n/a |")
        )
        for config, s in configs.items():
            sources = ", ".join(f"{k} {v}" for k, v in sorted(s["sources"].items()))
            detail_rows.append(
                f"| {title} | {config} | {s['n']} | {pct(s['pass@1'])} | {pct(s['exact'])} | "
                f"{ms(s['median_ms'])} | {ms(s['p95_ms'])} | {s['empty']} | {s['errors']} | "
                f"{sources} |"
            )
    canonical = meta.get("canonical", {})
    canonical_text = "; ".join(
        f"{SETS[name].title if name in SETS else name} {ok}/{n}"
        for name, (ok, n) in canonical.items()
    )
    warnings = meta.get("warnings") or []
    warning_text = (
        "\n- Server warnings: " + "; ".join(f"`{w}`" for w in warnings) if warnings else ""
    )
    plot = f"\n![pass@1, baseline and pipeline]({plot_link})\n" if plot_link else ""
    seconds = meta.get("seconds")
    took = (
        f"\n- Run time (generation and execution, both configurations): {seconds / 60:.0f} min"
        if isinstance(seconds, int | float)
        else ""
    )
    return f"""{SECTION}

`bench/quality.py` runs HumanEval infilling tasks through the real server
(`coder-lsp serve --stdio`, LSP over stdio): a document per task (`prompt + "\\n" + suffix`,
the cursor on the empty line between them), one `textDocument/inlineCompletion` request at a
time (single-line set: automatic trigger; multi-line set: invoked), then the program
`prompt + completion + "\\n" + suffix + test` runs in a sandbox (fresh interpreter and
temporary directory, {meta.get("timeout", 10.0):g} s timeout, 2 GiB address space). pass@1
counts the first item only (no suggestion fails). Two configurations, each a
server process of its own, on the same tasks: **baseline** shows the model's raw text, cut
only by the token limit and the template's stop tokens (`postprocess: false`), as a naive
client would; **pipeline** is the full pipeline (gate and post-processing; on the invoked
multi-line set, the server's ranked candidates, of which the first counts).
Both without repository context and without the suggestion cache. The difference is paired
(same tasks), with a 95% percentile bootstrap interval ({RESAMPLES:,} resamples of tasks).

- Machine: {meta.get("machine", "?")}
- Command: `{meta.get("command", "?")}`
- Profile: `{meta.get("profile", "?")}` (model `{meta.get("model", "?")}`)
- Settings (`initializationOptions` for the first set, `workspace/didChangeConfiguration`
  between sets):
{setting_lines}
- Tasks (random sample, seed {meta.get("seed", "?")}): {sizes}{took}
- Sandbox check: the canonical solutions of the sampled tasks pass {canonical_text}{warning_text}

| set | tasks | baseline pass@1 | pipeline pass@1 | pipeline - baseline (95% CI) \
| pipeline better / worse |
| --- | ---: | ---: | ---: | --- | --- |
{chr(10).join(pass_rows)}

| set | config | tasks | pass@1 | exact match | median latency | p95 latency \
| empty | errors | answered by |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(detail_rows)}

Latency is the client's wall time per request (the gate answers without the model).
"Empty": no suggestion; "errors": a request that timed out or a server that died.

{recovery_markdown(recovery)}{plot}"""


def plot(summary: Mapping[str, Any], target: Path) -> None:
    """pass@1 bars per set (baseline, pipeline) and the paired difference with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    titles = [SETS[n].title if n in SETS else n for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.38
    for i, config in enumerate(CONFIGS):
        values = [
            summary[n]["configs"].get(config, {}).get("pass@1", math.nan) * 100 for n in names
        ]
        xs = [x + (i - 0.5) * width for x in range(len(names))]
        bars = left.bar(xs, values, width, label=config)
        left.bar_label(bars, fmt="%.1f", fontsize=8)
    tallest = max(
        (c.get("pass@1", 0.0) for f in summary.values() for c in f["configs"].values()),
        default=0.0,
    )
    left.set_ylim(0, max(10.0, min(105.0, tallest * 120 + 5)))
    left.set_xticks(range(len(names)), titles)
    left.set_ylabel("pass@1 (%)")
    left.set_title("pass@1")
    left.legend()
    diffs = [summary[n]["diff"] for n in names]
    ys = [d["diff"] * 100 if d else math.nan for d in diffs]
    low = [(d["diff"] - d["lo"]) * 100 if d else 0.0 for d in diffs]
    high = [(d["hi"] - d["diff"]) * 100 if d else 0.0 for d in diffs]
    right.errorbar(range(len(names)), ys, yerr=[low, high], fmt="o", capsize=6)
    right.axhline(0, color="black", linewidth=0.8)
    ends = [abs(d[k]) * 100 for d in diffs if d for k in ("lo", "hi") if not math.isnan(d[k])]
    reach = max([5.0, *ends])
    right.set_ylim(-reach * 1.2, reach * 1.2)
    right.set_xticks(range(len(names)), titles)
    right.set_xlim(-0.5, len(names) - 0.5)
    right.set_ylabel("percentage points")
    right.set_title("pipeline - baseline (95% CI)")
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=100)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--limit", type=int, default=100, help="tasks per set (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", default="single,multi")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--max-tokens-single", type=int, default=48)
    parser.add_argument("--max-tokens-multi", type=int, default=96)
    parser.add_argument(
        "--candidates-multi",
        type=int,
        default=3,
        help="pipeline samples on the multi-line set (invoked trigger), ranked by the server",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per program run")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--load-timeout", type=float, default=900.0)
    parser.add_argument("--workers", type=int, default=2, help="programs run at once")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="raw results (JSON)")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--plot", type=Path, help="default: quality.png next to the README")
    parser.add_argument("--server-log", type=Path, help="server stderr (default: in /tmp)")
    parser.add_argument("--report-only", action="store_true", help="rebuild from --output")
    parser.add_argument("--retry-errors", action="store_true", help="ask again after errors")
    parser.add_argument(
        "--recovery",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the model-free recovery check (all tasks, about 15 s)",
    )
    args = parser.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for name in args.sets:
        if name not in SETS:
            parser.error(f"unknown set {name!r}; known: {', '.join(SETS)}")
    for name in args.configs:
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    args.plot = args.plot or args.readme.with_name("quality.png")
    args.server_log = args.server_log or Path(tempfile.gettempdir()) / "coder-lsp-quality.log"
    return args


def command_line(argv: Sequence[str]) -> str:
    """How this run was started, for the README (without --report-only)."""
    kept = [a for a in argv if a != "--report-only"]
    return shlex.join([".venv/bin/python", "bench/quality.py", *kept])


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("CODER_LSP_CACHE_DIR", str(ROOT / ".cache" / "coder-lsp"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    limits = Limits(timeout_s=args.timeout)
    machine = describe()

    rows_by_set = {name: load_rows(args.data / SETS[name].file) for name in args.sets}
    samples = {name: sample(rows, args.limit, args.seed) for name, rows in rows_by_set.items()}
    data = load_results(args.output)

    def save() -> None:
        save_results(args.output, data)

    settings = {
        config: {
            name: options(
                config,
                getattr(args, f"max_tokens_{name}"),
                args.candidates_multi if name == "multi" else 1,
            )
            for name in args.sets
        }
        for config in args.configs
    }
    keys = {
        (config, name): run_key(config, name, args.profile, settings[config][name])
        for config in args.configs
        for name in args.sets
    }
    jobs = {
        (config, name): Job(
            SETS[name],
            samples[name],
            settings[config][name],
            run_record(data, key, config, SETS[name], args.profile, settings[config][name]),
        )
        for (config, name), key in keys.items()
    }

    if not args.report_only:
        for name in args.sets:
            check_canonical(data, SETS[name], samples[name], limits, args.workers)
        save()
        # Execute what an interrupted run generated but did not run.
        if execute(jobs.values(), limits, args.workers):
            save()
        asked = sum(len(pending(job, args.retry_errors)) for job in jobs.values())
        if asked:
            # The README names the run that last generated something (not a mere re-report).
            data["meta"] = {"command": command_line(argv), "machine": machine}
            save()
        started = time.perf_counter()
        for config in args.configs:
            config_jobs = [jobs[(config, name)] for name in args.sets]
            print(f"== {config}: {args.profile}", file=sys.stderr)
            asyncio.run(generate(args.profile, config_jobs, args, save))
            ran = execute(config_jobs, limits, args.workers)
            save()
            print(f"== {config}: ran {ran} programs", file=sys.stderr)
        if asked:
            data["meta"]["seconds"] = round(time.perf_counter() - started, 1)
            save()

    summary = summarize(
        data["runs"],
        keys,
        {name: [row["task_id"] for row in rows] for name, rows in samples.items()},
        seed=args.seed,
    )
    print(console_table(summary))
    canonical: dict[str, tuple[int, int]] = {}
    for name in args.sets:
        checked = data["canonical"].get(name, {})
        results = [checked[row["task_id"]] for row in samples[name] if row["task_id"] in checked]
        canonical[name] = (sum(r == "passed" for r in results), len(results))
        failing = [r for r in results if r != "passed"]
        if failing:
            print(f"canonical solutions failing in {name}: {failing[:5]}", file=sys.stderr)
    print(
        "canonical solutions pass: " + ", ".join(f"{n} {a}/{b}" for n, (a, b) in canonical.items())
    )

    recovery: Mapping[str, Any] | str = "not run (--no-recovery)"
    if args.recovery:
        picked = {RECOVERY_SETS[name]: rows for name, rows in rows_by_set.items()}
        figures = recovery_figures(picked)
        recovery = (
            {name: figures[RECOVERY_SETS[name]] for name in args.sets}
            if isinstance(figures, dict)
            else figures
        )
        print(recovery_markdown(recovery))

    models = {data["runs"][k].get("model") for k in keys.values() if k in data["runs"]}
    warnings: list[str] = []
    for key in keys.values():
        for w in data["runs"].get(key, {}).get("warnings", []):
            if w not in warnings:
                warnings.append(w)
    stored = data.get("meta", {})
    meta = {
        "machine": stored.get("machine", machine),
        "command": stored.get("command", command_line(argv)),
        "profile": args.profile,
        # The model's folder name, not where this machine keeps it.
        "model": ", ".join(sorted(Path(m).name if m.startswith("/") else m for m in models if m))
        or "?",
        "settings": settings,
        "set_sizes": {name: len(rows) for name, rows in rows_by_set.items()},
        "seed": args.seed,
        "timeout": args.timeout,
        "seconds": stored.get("seconds"),
        "canonical": canonical,
        "warnings": warnings,
    }
    plot(summary, args.plot)
    try:
        link = os.path.relpath(args.plot, args.readme.parent)
    except ValueError:
        link = str(args.plot)
    replace_section(args.readme, SECTION, markdown(summary, meta, recovery, link))
    print(f"wrote {args.readme} ({SECTION!r}), {args.plot}, {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
