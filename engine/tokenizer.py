"""The tokenizer view the prompt builder needs, over a model's `tokenizer.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer


class PromptTokenizer(Protocol):
    """Counts tokens exactly as the model will see them (no BOS/EOS added)."""

    def encode(self, text: str) -> list[int]: ...

    def single_token_id(self, text: str) -> int | None:
        """The id when `text` is exactly one token of the vocabulary, else None."""
        ...


class HFTokenizer:
    """A `tokenizers.Tokenizer` loaded from a model directory or a tokenizer.json file."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer

    @classmethod
    def from_path(cls, path: str | Path) -> HFTokenizer:
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {p}")
        return cls(Tokenizer.from_file(str(p)))

    @classmethod
    def from_model(cls, model: str) -> HFTokenizer:
        """From a local model directory, or a hub id already in the local Hugging Face cache."""
        if Path(model).exists():
            return cls.from_path(model)
        from huggingface_hub import hf_hub_download

        # Never a download at run time (a served name is not even a hub id): `coder-lsp
        # models --prepare` fetches models ahead of time.
        return cls.from_path(hf_hub_download(model, "tokenizer.json", local_files_only=True))

    def encode(self, text: str) -> list[int]:
        # The batch entry without offsets: a fifth cheaper than `encode` for the same ids.
        return list(self._tok.encode_batch_fast([text], add_special_tokens=False)[0].ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))

    def single_token_id(self, text: str) -> int | None:
        ids = self.encode(text)
        return ids[0] if len(ids) == 1 else None
