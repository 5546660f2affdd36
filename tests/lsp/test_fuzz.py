"""The protocol fuzzer (`tests/lsp/fuzz.py`) on the real server: 20,000 seeded messages."""

from __future__ import annotations

import pytest

from tests.lsp.fuzz import fuzz

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier

MESSAGES = 20_000


@pytest.mark.parametrize("seed", [0])
async def test_every_request_answered_and_every_document_right(seed: int) -> None:
    report = await fuzz(seed, MESSAGES)
    print(
        f"\nfuzz seed {seed}: {report.messages} messages ({report.requests} requests, "
        f"{report.probes} document probes) in {report.seconds:.1f} s; {dict(report.kinds)}"
    )
    assert report.messages >= MESSAGES
    assert report.alive, "the server died"
    assert report.missing == [], f"requests without an answer: {report.missing[:10]}"
    assert report.extra == [], f"requests answered twice: {report.extra[:10]}"
    assert report.wrong_codes == [], report.wrong_codes[:5]
    assert report.divergences == [], report.divergences[:3]
    assert report.probes >= 100
    for kind in (
        "didChange",
        "bad-params",
        "malformed",
        "cancel",
        "duplicate-id",
        "unknown-method",
    ):
        assert report.kinds[kind] > 0, kind
