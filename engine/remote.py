"""An Engine on vLLM's OpenAI-compatible server (`vllm serve`), over one or more endpoints.

Prompts are rendered here (vLLM's `/v1/completions` rejects a `suffix`), so the FIM template
and token budget are the same as with the embedded engine. Each request goes to the healthy
endpoint with the fewest requests in flight; an endpoint that cannot be reached is marked
down and the request moves on to the next one, which is safe because nothing was generated
yet. Once tokens have arrived, a broken stream is an error, not a retry. Closing the stream
(cancelling the consumer) makes vLLM abort the request. Health checks (`/health`) run in the
background and bring endpoints back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from engine import (
    EngineError,
    EngineNotReady,
    EngineState,
    EngineStatus,
    GenerationChunk,
    GenerationRequest,
    RequestLog,
    RequestRecord,
    timing,
)
from engine.http_stream import StreamedResponse, StreamPool, direct

log = logging.getLogger(__name__)

REQUEST_LOG_SIZE = 64
DRAIN_S = 0.25
"""How long the end of a finished answer's body is waited for (to keep its connection)."""
MAX_SERVER_STOPS = 4
"""The OpenAI API takes at most four stop strings; further ones are applied here."""
HEALTH_INTERVAL_S = 5.0


class RemoteOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach the servers."""

    endpoints: tuple[str, ...]
    """Base URLs of the OpenAI-compatible API, e.g. ``http://gpu-box:8000/v1``."""
    model: str | None = None
    """The served model name; None takes the one model the endpoints serve."""
    api_key: str | None = None
    api_key_env: str = ""
    """Where the key came from, for messages (the key itself is never logged)."""
    ca_bundle: str | None = None
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    health_interval_s: float = HEALTH_INTERVAL_S


@dataclass
class Endpoint:
    """One server and what is known of it."""

    url: str
    healthy: bool = False
    inflight: int = 0
    served: int = 0
    error: str = ""
    models: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    """LoRA adapters the server has loaded (served as models of their own)."""
    roots: dict[str, str] = field(default_factory=dict)
    """Where the server loaded each model from (a local path when it runs here)."""
    direct: bool = True
    """No proxy applies and the URL holds no credentials: completions go on the engine's
    own connections (`engine.http_stream`)."""

    def __post_init__(self) -> None:
        self.direct = direct(self.url)

    @property
    def server(self) -> str:
        """The server root (the API base without its ``/v1``)."""
        return self.url.removesuffix("/").removesuffix("/v1")

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "inflight": self.inflight,
            "served": self.served,
            "error": self.error,
        }


class _Samples:
    """The samples of one streamed request, cumulative, with the stop strings the server was
    not given applied here."""

    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.local_stops = list(request.stop[MAX_SERVER_STOPS:])
        self.texts: dict[int, str] = {}
        self.counts: dict[int, int] = {}
        self.logprobs: dict[int, float] = {}
        self.done: set[int] = set()
        self.cut_here: set[int] = set()
        """Samples this client stopped (a stop string the server was not given)."""

    @property
    def all_done(self) -> bool:
        return len(self.done) >= self.request.n

    @property
    def finished_by_server(self) -> bool:
        """Whether the server itself ended every sample (nothing more is being generated)."""
        return not self.cut_here

    def _cut(self, i: int, added: int) -> bool:
        """Cut sample `i` at the first local stop string in its new text."""
        text = self.texts[i]
        longest = max((len(s) for s in self.local_stops), default=0)
        window = max(0, len(text) - added - longest)
        hits = [p for p in (text.find(s, window) for s in self.local_stops) if p >= 0]
        if not hits:
            return False
        self.texts[i] = text[: min(hits)]
        return True

    def add(self, data: str) -> list[GenerationChunk]:
        """The chunks one stream event gives (none for samples already stopped)."""
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise EngineError(f"unreadable stream event: {data[:200]}") from exc
        if not isinstance(event, dict):
            raise EngineError(f"unreadable stream event: {data[:200]}")
        if "error" in event:
            raise EngineError(f"the server reported: {event['error']}")
        try:
            return self._choices(event.get("choices") or [])
        except (TypeError, ValueError, AttributeError) as exc:
            raise EngineError(f"unreadable stream event: {data[:200]}") from exc

    def _choices(self, choices: list[dict[str, Any]]) -> list[GenerationChunk]:
        out: list[GenerationChunk] = []
        for choice in choices:
            i = int(choice.get("index", 0))
            if i in self.done:
                continue
            piece = choice.get("text") or ""
            self.texts[i] = self.texts.get(i, "") + piece
            lp = choice.get("logprobs") or {}
            token_lps = [x for x in (lp.get("token_logprobs") or []) if x is not None]
            self.counts[i] = self.counts.get(i, 0) + max(1, len(token_lps))
            self.logprobs[i] = self.logprobs.get(i, 0.0) + sum(token_lps)
            reason = choice.get("finish_reason")
            if self.local_stops and self._cut(i, len(piece)):
                if reason is None:
                    self.cut_here.add(i)
                reason = "stop"
            mean = None
            if reason is not None:
                self.done.add(i)
                if self.request.logprobs and self.counts[i]:
                    mean = self.logprobs[i] / self.counts[i]
            out.append(
                GenerationChunk(
                    index=i,
                    text=self.texts[i],
                    token_count=self.counts[i],
                    finished=reason is not None,
                    finish_reason=reason,
                    mean_logprob=mean,
                )
            )
        return out


class _Unreachable(Exception):
    """The endpoint did not take the request; another one may."""


def _explain(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc) or "connection refused"
        if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
            return f"TLS failure: {text} (engine.caBundle names the CA bundle to trust)"
        return f"cannot connect: {text}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


class RemoteEngine:
    """An `Engine` on one or more `vllm serve` endpoints."""

    def __init__(
        self, options: RemoteOptions, *, on_change: Callable[[EngineState], None] | None = None
    ) -> None:
        if not options.endpoints:
            raise ValueError("engine.endpoints is empty: give at least one server URL")
        self._options = options
        self._endpoints = [Endpoint(url.rstrip("/")) for url in options.endpoints]
        self._model = options.model or ""
        self._state = EngineState(EngineStatus.STARTING, "not started", self._model)
        self._log = RequestLog(REQUEST_LOG_SIZE)
        self._client: httpx.AsyncClient | None = None
        self._streams: StreamPool | None = None
        """Completions' own connections (`engine.http_stream`); the client does the rest."""
        self._health: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        """Finished answers whose body ends are still being read (`_finish`)."""
        self._on_change = on_change
        self._turn = 0

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def model(self) -> str:
        return self._model

    def endpoints(self) -> list[dict[str, Any]]:
        """Each endpoint's health and load, for status displays."""
        return [e.describe() for e in self._endpoints]

    def tokenizer_path(self) -> str:
        """Where the served model's tokenizer can be read on this machine (the server's model
        directory when it runs here), else the served name."""
        for e in self._endpoints:
            root = e.roots.get(self._model, "")
            if root and os.path.isdir(root):
                return root
        return self._model

    def _update_state(self) -> None:
        healthy = [e for e in self._endpoints if e.healthy]
        if healthy:
            down = [f"{e.url} ({e.error})" for e in self._endpoints if not e.healthy]
            reason = f"{len(healthy)} of {len(self._endpoints)} endpoints up" + (
                "; down: " + ", ".join(down) if down else ""
            )
            state = EngineState(EngineStatus.READY, reason, self._model)
        else:
            errors = "; ".join(f"{e.url}: {e.error}" for e in self._endpoints)
            state = EngineState(EngineStatus.FAILED, f"no endpoint answers: {errors}", self._model)
        if state != self._state and self._state.status is not EngineStatus.STOPPED:
            self._state = state
            log.info("remote engine: %s (%s)", state.status.value, state.reason)
            if self._on_change is not None and self._health is not None:
                self._on_change(state)  # changes while running; start() reports its own

    # -- lifecycle -----------------------------------------------------------------------------

    def _make_client(self) -> httpx.AsyncClient:
        o = self._options
        headers = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}
        verify: str | bool = o.ca_bundle if o.ca_bundle else True
        timeout = httpx.Timeout(o.first_token_timeout_s, connect=o.connect_timeout_s)
        return httpx.AsyncClient(headers=headers, verify=verify, timeout=timeout)

    def _make_streams(self) -> StreamPool:
        o = self._options
        headers = {"User-Agent": "coder-lsp"}
        if o.api_key:
            headers["Authorization"] = f"Bearer {o.api_key}"
        pool = StreamPool(
            headers=headers,
            ca_bundle=o.ca_bundle,
            connect_timeout_s=o.connect_timeout_s,
            read_timeout_s=o.first_token_timeout_s,
        )
        if o.ca_bundle and any(urlsplit(e.url).scheme == "https" for e in self._endpoints):
            pool.tls_context()  # an unreadable bundle fails here, at start, like httpx's
        return pool

    async def start(self) -> None:
        """Check every endpoint (`/v1/models`) and the model name; then watch their health."""
        self._state = EngineState(EngineStatus.STARTING, "connecting", self._model)
        try:
            self._client = self._make_client()
            self._streams = self._make_streams()
        except (OSError, ValueError) as exc:  # e.g. an unreadable CA bundle
            self._state = EngineState(EngineStatus.FAILED, f"engine.caBundle: {exc}", self._model)
            return
        await asyncio.gather(*(self._check_models(e) for e in self._endpoints))
        problem = self._choose_model()
        if problem:
            self._state = EngineState(EngineStatus.FAILED, problem, self._model)
            log.error("remote engine: %s", problem)
            return
        self._update_state()
        self._health = asyncio.get_running_loop().create_task(self._watch_health())

    async def _check_models(self, e: Endpoint) -> None:
        assert self._client is not None
        try:
            response = await self._client.get(f"{e.url}/models")
        except httpx.HTTPError as exc:
            e.healthy, e.error = False, _explain(exc)
            return
        if response.status_code == 401:
            e.healthy = False
            env = self._options.api_key_env
            e.error = (
                f"unauthorized (401): the key in ${env} (engine.apiKeyEnv) was refused"
                if self._options.api_key
                else f"unauthorized (401): put the key in ${env} (engine.apiKeyEnv)"
            )
            return
        if response.status_code != 200:
            e.healthy, e.error = False, f"GET /v1/models answered {response.status_code}"
            return
        try:
            data = response.json().get("data", [])
            # LoRA adapters are listed too, with their base model as `parent`.
            e.models = [str(m["id"]) for m in data if not m.get("parent")]
            e.adapters = [str(m["id"]) for m in data if m.get("parent")]
            e.roots = {str(m["id"]): str(m.get("root") or "") for m in data}
        except (ValueError, KeyError, TypeError, AttributeError):
            e.healthy, e.error = False, "GET /v1/models did not answer a model list"
            return
        e.healthy, e.error = True, ""

    def _choose_model(self) -> str:
        """Settle the served model name; a message naming the setting when it is wrong."""
        reachable = [e for e in self._endpoints if e.healthy]
        if not reachable:
            errors = "; ".join(f"{e.url}: {e.error}" for e in self._endpoints)
            return f"engine.endpoints: no endpoint answers ({errors})"
        if not self._model:
            names = sorted({m for e in reachable for m in e.models})
            if len(names) != 1:
                return f"engine.model is not set and the endpoints serve {names or 'nothing'}"
            self._model = names[0]
        for e in reachable:
            if self._model not in e.models:
                e.healthy = False
                e.error = f"does not serve {self._model!r} (it serves {', '.join(e.models)})"
        if not any(e.healthy for e in self._endpoints):
            served = sorted({m for e in reachable for m in e.models})
            return f"engine.model {self._model!r} is not served; the endpoints serve {served}"
        return ""

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(self._options.health_interval_s)
            await asyncio.gather(*(self._probe(e) for e in self._endpoints))
            self._update_state()

    async def _probe(self, e: Endpoint) -> None:
        if self._client is None:
            return
        try:
            response = await self._client.get(f"{e.server}/health", timeout=5.0)
        except httpx.HTTPError as exc:
            e.healthy, e.error = False, _explain(exc)
            return
        if response.status_code == 200:
            if not e.healthy:
                await self._check_models(e)
                if e.healthy and self._model not in e.models:
                    e.healthy, e.error = False, f"does not serve {self._model!r}"
        else:
            e.healthy, e.error = False, f"/health answered {response.status_code}"

    async def shutdown(self) -> None:
        task, self._health = self._health, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for finishing in list(self._finishing):
            finishing.cancel()
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        streams, self._streams = self._streams, None
        if streams is not None:
            await streams.aclose()
        self._state = EngineState(EngineStatus.STOPPED, "", self._model)

    # -- requests --------------------------------------------------------------------------

    def _ready(self) -> httpx.AsyncClient:
        if self._state.status is not EngineStatus.READY or self._client is None:
            raise EngineNotReady(f"engine is {self._state.status.value}: {self._state.reason}")
        return self._client

    def _order(self) -> list[Endpoint]:
        """Healthy endpoints, fewest requests in flight first (ties take turns)."""
        self._turn += 1
        n = len(self._endpoints)
        ranked = sorted(
            (e for e in self._endpoints if e.healthy),
            key=lambda e: (e.inflight, (self._endpoints.index(e) - self._turn) % n),
        )
        return ranked

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            # A LoRA adapter is served under its own model name (vllm serve --lora-modules).
            "model": request.lora or self._model,
            "prompt": request.prompt,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "n": request.n,
            "stream": True,
            "skip_special_tokens": False,
        }
        if request.stop:
            body["stop"] = list(request.stop[:MAX_SERVER_STOPS])
        if request.logprobs:
            body["logprobs"] = 0
        if request.ignore_eos:
            body["ignore_eos"] = True
        return body

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        """Stream cumulative text per sample from the least loaded healthy endpoint."""
        client = self._ready()
        request_id = request.request_id or uuid.uuid4().hex
        self._log.record(request, request_id, "running", 0)
        status, tokens = "aborted", 0
        attempts = self._order()
        if not attempts:
            self._log.record(request, request_id, "failed", 0)
            raise EngineNotReady(f"no endpoint is up: {self._state.reason}")
        try:
            for attempt, endpoint in enumerate(attempts):
                try:
                    # Closed here, not later by the loop's finalizer: a consumer that leaves
                    # closes the connection at once, which aborts the generation there.
                    streamed = self._stream(client, endpoint, request, request_id)
                    async with contextlib.aclosing(streamed):
                        async for chunk in streamed:
                            tokens = max(tokens, chunk.token_count)
                            yield chunk
                    status = "finished"
                    return
                except _Unreachable as exc:
                    endpoint.healthy, endpoint.error = False, str(exc)
                    self._update_state()
                    log.warning("endpoint %s failed, trying another: %s", endpoint.url, exc)
                    await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            status = "failed"
            raise EngineError(f"no endpoint took the request: {self._state.reason}")
        except EngineError:
            status = "failed"
            raise
        finally:
            self._log.record(request, request_id, status, tokens)

    async def _stream(
        self,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        request: GenerationRequest,
        request_id: str,
    ) -> AsyncGenerator[GenerationChunk, None]:
        samples = _Samples(request)
        started = False
        endpoint.inflight += 1
        try:
            try:
                url = f"{endpoint.url}/completions"
                headers = {"X-Request-Id": request_id}
                response: httpx.Response | StreamedResponse
                if self._streams is not None and endpoint.direct:
                    body = msgspec.json.encode(self._body(request))
                    response = await self._streams.post(url, body, headers)
                else:  # a proxy, or basic auth from the URL: httpx knows how
                    response = await client.send(
                        client.build_request(
                            "POST", url, json=self._body(request), headers=headers
                        ),
                        stream=True,
                    )
                handed_off = False
                try:
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _Unreachable(f"POST /v1/completions answered {response.status_code}")
                    if response.status_code != 200:
                        detail = (await response.aread()).decode(errors="replace")[:300]
                        raise EngineError(
                            f"{endpoint.url} refused the request ({response.status_code}): {detail}"
                        )
                    timing.mark("engineQueue")  # the endpoint has taken the request
                    ended = False
                    lines = response.aiter_lines()
                    async for line in lines:
                        if not line.startswith("data: "):
                            continue
                        data = line[6:].strip()
                        if data == "[DONE]":
                            ended = True
                            break
                        started = True
                        chunks = samples.add(data)
                        if samples.all_done and samples.finished_by_server:
                            # The answer is whole: the end of its body is read in the
                            # background, which gives the connection back to the pool.
                            self._finish(response, lines)
                            handed_off = True
                        for chunk in chunks:
                            yield chunk
                        if samples.all_done:
                            ended = True
                            break  # stopped here: closing the stream aborts the rest
                    if not ended:
                        # The connection closed between two events (the server died): what
                        # came is not the whole answer.
                        raise httpx.RemoteProtocolError("the stream ended before it finished")
                finally:
                    if not handed_off:
                        await response.aclose()
            except httpx.HTTPError as exc:
                if started:  # tokens were shown: not safe to ask again elsewhere
                    endpoint.healthy, endpoint.error = False, f"broke off: {_explain(exc)}"
                    self._update_state()
                    raise EngineError(f"{endpoint.url} broke off: {_explain(exc)}") from exc
                raise _Unreachable(_explain(exc)) from exc
            endpoint.served += 1
        finally:
            endpoint.inflight -= 1

    def _finish(
        self, response: httpx.Response | StreamedResponse, lines: AsyncIterator[str]
    ) -> None:
        """Read what is left of a finished answer (``[DONE]``, the end of the body) and close
        it, in the background and briefly: a response read whole gives its connection back to
        the pool, and a new connection per request costs more than the rest of the request. A
        tail that breaks or lingers costs that connection only."""

        async def finish() -> None:
            try:
                with contextlib.suppress(TimeoutError, httpx.HTTPError):
                    async with asyncio.timeout(DRAIN_S):
                        async for _ in lines:
                            pass
            finally:
                await response.aclose()

        task = asyncio.get_running_loop().create_task(finish())
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def request_log(self) -> list[RequestRecord]:
        return self._log.records()

    def unfinished_requests(self) -> int:
        """Requests this client still streams (the servers' own counts are in `/metrics`)."""
        return sum(e.inflight for e in self._endpoints)


class EndpointTokenizer:
    """A `PromptTokenizer` asking the server's `/tokenize` (for clients without the model's
    tokenizer files). Texts already counted are remembered: prompt assembly counts the same
    lines again and again."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        api_key: str | None = None,
        ca_bundle: str | None = None,
        cache_size: int = 8192,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, verify=ca_bundle or True, timeout=httpx.Timeout(10.0, connect=5.0)
        )
        self._url = endpoint.rstrip("/").removesuffix("/v1") + "/tokenize"
        self._model = model
        self._cache: dict[str, list[int]] = {}
        self._cache_size = cache_size

    def encode(self, text: str) -> list[int]:
        cached = self._cache.get(text)
        if cached is not None:
            return list(cached)
        body = {"model": self._model, "prompt": text, "add_special_tokens": False}
        try:
            response = self._client.post(self._url, json=body)
            response.raise_for_status()
            tokens = [int(t) for t in response.json()["tokens"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"{self._url}: {_explain(exc)}") from exc
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[text] = tokens
        return list(tokens)

    def single_token_id(self, text: str) -> int | None:
        ids = self.encode(text)
        return ids[0] if len(ids) == 1 else None

    def close(self) -> None:
        self._client.close()


def api_key_from_env(name: str) -> str | None:
    """The key in environment variable `name` (empty counts as unset)."""
    value = os.environ.get(name, "").strip() if name else ""
    return value or None


__all__ = [
    "Endpoint",
    "EndpointTokenizer",
    "RemoteEngine",
    "RemoteOptions",
    "api_key_from_env",
]
