"""Instruction prompts for the edit model: one user turn and the start of the answer.

The completion model is a base FIM model; fixes and tests come from an instruction model,
which expects its chat format. Each family renders one user message followed by the opening
of the assistant's turn and an optional `prefill` (e.g. an opening code fence), so even a
small model answers in the expected shape. Markers are written as escapes where they use
characters that look like ASCII (DeepSeek's U+FF5C and U+2581).
"""

from __future__ import annotations

import msgspec

_DS_BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
_DS_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"


class ChatTemplate(msgspec.Struct, frozen=True):
    """How one model family lays out a single-turn instruction prompt."""

    name: str
    user_start: str
    """Text before the user's message (including any begin-of-sequence marker)."""
    user_end: str
    """Text after the user's message, up to where the answer starts."""
    stop: tuple[str, ...] = ()
    """Strings that end the assistant's turn."""
    style: str = "instruct"
    """"instruct": the model follows a request; "document": a base model, which is shown a
    document that the wanted answer naturally continues."""

    def render(self, message: str, prefill: str = "") -> str:
        """The prompt: the user turn, then the assistant's turn opened with `prefill`."""
        return f"{self.user_start}{message}{self.user_end}{prefill}"


CHAT_TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        # DeepSeek-Coder-V2-Instruct (and Lite-Instruct): "User: ...\n\nAssistant:".
        ChatTemplate(
            name="deepseek",
            user_start=f"{_DS_BOS}User: ",
            user_end="\n\nAssistant: ",
            stop=(_DS_EOS, "\n\nUser:"),
        ),
        # Gemma instruction-tuned checkpoints.
        ChatTemplate(
            name="gemma",
            user_start="<start_of_turn>user\n",
            user_end="<end_of_turn>\n<start_of_turn>model\n",
            stop=("<end_of_turn>", "<eos>"),
        ),
        # Base models: no turns, the prompt is a document the answer continues.
        ChatTemplate(
            name="plain",
            user_start="",
            user_end="",
            stop=("<eos>", "</s>", "<|endoftext|>"),
            style="document",
        ),
    )
}


def chat_template(name: str) -> ChatTemplate:
    """The template called `name`, or a ValueError listing the known ones."""
    try:
        return CHAT_TEMPLATES[name]
    except KeyError:
        known = ", ".join(CHAT_TEMPLATES)
        raise ValueError(f"unknown chat template {name!r}; known: {known}") from None


__all__ = ["CHAT_TEMPLATES", "ChatTemplate", "chat_template"]
