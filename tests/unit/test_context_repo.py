"""Cross-file context end to end: a small repository, the real workspace index, the real
prompt builder, and `coder-lsp context`."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from engine.models.tiny_moe import SPECIAL_TOKENS, train_byte_level_bpe
from engine.prompt import BuiltPrompt, build_prompt
from engine.templates import DEEPSEEK, QWEN
from engine.tokenizer import HFTokenizer
from lsp_server.cli import context as context_cli
from lsp_server.context.gather import (
    RepoContext,
    gather_context,
    prompt_with_context,
    render_signature,
)
from lsp_server.context.similar import RecentDocuments
from lsp_server.workspace.index import WorkspaceIndex

BILLING = '''\
"""Money."""

TAX_RATE = 0.2


def compute_total(items: list[float], *, tax: float = TAX_RATE) -> float:
    """Sum the items and add tax on top.

    Rounds to cents.
    """
    return round(sum(items) * (1 + tax), 2)


class Invoice:
    """One customer's bill."""

    def __init__(self, customer: str, items: list[float]) -> None:
        self.customer = customer
        self.items = items
'''

MAIN = """\
from shop.billing import Invoice, compute_total


def checkout(customer, cart):
    invoice = Invoice(customer, cart)
    total = compute_total(invoice.items)
    return total
"""

SIGNATURE = "def compute_total(items: list[float], *, tax: float = TAX_RATE) -> float:"
DOC = '    """Sum the items and add tax on top."""'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shoprepo"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "billing.py").write_text(BILLING)
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text(MAIN)
    return root


@pytest.fixture(scope="module")
def raw_tokenizer() -> Tokenizer:
    """A BPE with DeepSeek's special tokens and Qwen's repository tokens."""
    extra = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>"]
    sources = [inspect.getsource(textwrap), BILLING]
    return train_byte_level_bpe(sources, SPECIAL_TOKENS + extra, 1200)


@pytest.fixture(scope="module")
def tok(raw_tokenizer: Tokenizer) -> HFTokenizer:
    return HFTokenizer(raw_tokenizer)


def blanked_call(root: Path) -> tuple[str, str, int]:
    """app/main.py with the `compute_total` line blanked, and the cursor after its indent."""
    path = root / "app" / "main.py"
    text = MAIN.replace("    total = compute_total(invoice.items)\n", "    \n")
    return str(path), text, text.index("    \n") + 4


def index_of(root: Path, tmp_path: Path) -> WorkspaceIndex:
    index = WorkspaceIndex([root], cache_dir=tmp_path / "cache", workers=0)
    stats = index.build()
    assert stats.symbols == 5  # TAX_RATE, compute_total, Invoice, __init__, checkout
    return index


def test_prompt_carries_a_definition_from_another_file(
    repo: Path, tmp_path: Path, tok: HFTokenizer
) -> None:
    index = index_of(repo, tmp_path)
    path, text, offset = blanked_call(repo)
    ctx = gather_context(
        path=path,
        text=text,
        offset=offset,
        language_id="python",
        index=index,
        recent=None,
        tokenizer=tok,
        budget_tokens=400,
        root=str(repo),
    )
    names = [s.name for s in ctx.snippets]
    assert names == ["compute_total", "Invoice"]  # by line in shop/billing.py
    prompt = build_prompt(
        DEEPSEEK,
        tok,
        text[:offset],
        text[offset:],
        1000,
        context=ctx.files(),
        file_path=ctx.file_path,
        context_share=0.4,
    )
    begin, hole, _ = DEEPSEEK.markers()
    head = prompt.text[: prompt.text.index("# path: app/main.py\n")]
    assert head.startswith(begin + "# path: shop/billing.py\n")
    assert SIGNATURE in head and DOC not in head  # small enough: the whole body is shown
    assert "Rounds to cents." in head and "return round(sum(items)" in head
    assert BILLING[BILLING.index("class Invoice:") :].rstrip() in head  # a small class, whole
    assert prompt.text.endswith(f"    {hole}\n    return total\n" + DEEPSEEK.markers()[2])
    assert prompt.prompt_tokens <= 1000 and prompt.context_files == 1


def test_signature_and_docstring_when_the_budget_is_small(
    repo: Path, tmp_path: Path, tok: HFTokenizer
) -> None:
    index = index_of(repo, tmp_path)
    path, text, offset = blanked_call(repo)

    def cost(snippet: str) -> int:
        return len(tok.encode(f"// path: shop/billing.py\n{snippet}\n\n"))

    (invoice,) = index.definitions("Invoice")
    (init,) = [s for s in index.symbols_in(invoice.path) if s.name == "__init__"]
    (total,) = index.definitions("compute_total")
    budget = cost(render_signature(invoice, [init])) + cost(render_signature(total))
    ctx = gather_context(
        path=path,
        text=text,
        offset=offset,
        language_id="python",
        index=index,
        recent=None,
        tokenizer=tok,
        budget_tokens=budget,
        root=str(repo),
    )
    assert [s.name for s in ctx.snippets] == ["compute_total", "Invoice"]
    assert ctx.snippets[0].text == f"{SIGNATURE}\n{DOC}\n    ..."
    assert not ctx.snippets[0].body and ctx.tokens == budget
    prompt = build_prompt(
        QWEN,
        tok,
        text[:offset],
        text[offset:],
        400,
        context=ctx.files(),
        file_path=ctx.file_path,
        repo_name=repo.name,
        context_share=0.3,
    )
    assert prompt.text.startswith(
        f"<|repo_name|>shoprepo\n<|file_sep|>shop/billing.py\n{SIGNATURE}\n{DOC}\n"
    )
    assert "<|file_sep|>app/main.py\n<|fim_prefix|>from shop.billing import" in prompt.text


def test_open_documents_add_similar_windows(repo: Path, tmp_path: Path, tok: HFTokenizer) -> None:
    index = index_of(repo, tmp_path)
    recent = RecentDocuments()
    other = repo / "app" / "refunds.py"
    recent.touch(
        other.as_uri(),
        "def refund(customer, cart):\n    invoice = Invoice(customer, cart)\n"
        "    total = compute_total(invoice.items, tax=0)\n    return -total\n",
        "python",
    )
    path, text, offset = blanked_call(repo)
    ctx = gather_context(
        path=path,
        text=text,
        offset=offset,
        language_id="python",
        index=index,
        recent=recent,
        tokenizer=tok,
        budget_tokens=600,
        root=str(repo),
    )
    assert [s.kind for s in ctx.snippets][-1] == "similar"
    assert ctx.snippets[-1].path == "app/refunds.py"


def test_cli_prints_the_exact_prompt(
    repo: Path,
    tmp_path: Path,
    raw_tokenizer: Tokenizer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    raw_tokenizer.save(str(model / "tokenizer.json"))
    # The profile and model are the user's to choose (--config), not the workspace's.
    user = tmp_path / "mine.toml"
    user.write_text(f'profile = "deepseek-v2-lite"\n[engine]\nmodel = "{model}"\n')
    (repo / "coder-lsp.toml").write_text("[completion]\ncontext_tokens = 300\n")
    monkeypatch.setenv("CODER_LSP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CODER_LSP_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.delenv("CODER_LSP_PROFILE", raising=False)
    main = repo / "app" / "main.py"
    main.write_text(MAIN.replace("    total = compute_total(invoice.items)\n", "    \n"))
    rc = context_cli.run(main, 6, 5, repo, None, user)
    out, err = capsys.readouterr()
    assert rc == 0, err
    begin, hole, end = DEEPSEEK.markers()
    assert out.startswith(f"{begin}# path: shop/billing.py\n")
    assert SIGNATURE in out
    assert out.endswith(f"# path: app/main.py\n{MAIN.split('    total')[0]}    {hole}\n"
                        f"    return total\n{end}")  # fmt: skip
    assert "profile deepseek-v2-lite, template deepseek" in err


def test_cli_reports_bad_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.py"
    f.write_text("x = 1\n")
    assert context_cli.run(f, 9, 1, tmp_path, None, None) == 2
    assert "line 9 is outside the file" in capsys.readouterr().err
    assert context_cli.run(tmp_path / "missing.py", 1, 1, tmp_path, None, None) == 2


def test_prompt_with_context_budgets(repo: Path, tmp_path: Path, tok: HFTokenizer) -> None:
    index = index_of(repo, tmp_path)
    path, text, offset = blanked_call(repo)

    def prompt(budget: int, context_tokens: int) -> tuple[BuiltPrompt, RepoContext]:
        return prompt_with_context(
            template=DEEPSEEK,
            tokenizer=tok,
            path=path,
            text=text,
            offset=offset,
            language_id="python",
            index=index,
            recent=None,
            budget_tokens=budget,
            context_tokens=context_tokens,
            root=str(repo),
        )

    plain, ctx = prompt(300, 0)
    assert ctx.snippets == [] and plain.context_files == 0
    assert plain.text.startswith(DEEPSEEK.markers()[0] + "# path: app/main.py\nfrom shop")
    capped, ctx = prompt(300, 10_000)  # at most half of the prompt
    assert 0 < ctx.tokens <= 150 and capped.prompt_tokens <= 300
    assert capped.context_files == len(ctx.files()) == 1
    assert SIGNATURE in capped.text


def test_a_go_package_variable_is_context_for_its_uses(tmp_path: Path, tok: HFTokenizer) -> None:
    """`DefaultSocket.` in Go: the package-level variable's declaration is found and shown."""
    root = tmp_path / "gorepo"
    (root / "net").mkdir(parents=True)
    (root / "net" / "socket.go").write_text(
        "package net\n\n// DefaultSocket is the socket used when none is given.\n"
        'var DefaultSocket = NewSocket("/run/app.sock")\n\n'
        "func NewSocket(path string) *Socket {\n\treturn &Socket{path: path}\n}\n"
    )
    main = root / "main.go"
    text = 'package main\n\nimport "example.com/app/net"\n\nfunc main() {\n\tnet.DefaultSocket.'
    main.write_text(text)
    index = WorkspaceIndex([root], cache_dir=tmp_path / "cache", workers=0)
    index.build()
    ctx = gather_context(
        path=str(main),
        text=text,
        offset=len(text),
        language_id="go",
        index=index,
        recent=None,
        tokenizer=tok,
        budget_tokens=300,
        root=str(root),
    )
    shown = "\n".join(s.text for s in ctx.snippets)
    assert 'var DefaultSocket = NewSocket("/run/app.sock")' in shown, ctx.snippets
    assert "// DefaultSocket is the socket used when none is given." in shown
