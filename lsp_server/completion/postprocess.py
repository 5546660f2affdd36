"""Post-processing of a raw model completion: a pure function, usable without a server.

:func:`finalize` applies small named rules in order; each takes the completion and the
:class:`Context` and returns the trimmed completion (``""`` means "show nothing").
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_STOPS", "Context", "finalize"]

DEFAULT_STOPS: tuple[str, ...] = ("\n\n\n",)
"""Stop sequences safe in every language: two blank lines end any sensible completion."""


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules may look at besides the completion itself."""

    prefix: str
    suffix: str
    language_id: str
    stop: tuple[str, ...]
    single_line: bool


Rule = Callable[[str, Context], str]


def finalize(
    prefix: str,
    completion: str,
    suffix: str,
    language_id: str,
    *,
    stop: Sequence[str] = (),
    single_line: bool | None = None,
) -> str:
    """The text to insert at the cursor for a raw ``completion``, or ``""`` to show nothing.

    ``stop`` adds to :data:`DEFAULT_STOPS`. ``single_line=None`` decides from the cursor: with
    code to its right on the same line, only one line is kept.
    """
    if single_line is None:
        single_line = _code_right_of_cursor(suffix)
    context = Context(
        prefix=prefix,
        suffix=suffix,
        language_id=language_id,
        stop=(*stop, *DEFAULT_STOPS),
        single_line=single_line,
    )
    for rule in RULES:
        completion = rule(completion, context)
        if not completion:
            return ""
    return completion


def cut_at_stop(completion: str, context: Context) -> str:
    """Cut at the earliest occurrence of any stop sequence (empty ones are ignored)."""
    found = (completion.find(stop) for stop in context.stop if stop)
    return completion[: min((i for i in found if i != -1), default=len(completion))]


def keep_first_line(completion: str, context: Context) -> str:
    """In single-line mode keep only the completion's first line."""
    if not context.single_line:
        return completion
    return completion.split("\n", 1)[0]


def strip_trailing_whitespace(completion: str, context: Context) -> str:
    """Drop whitespace (newlines included) at the very end; inner lines are left alone."""
    return completion.rstrip()


def drop_blank(completion: str, context: Context) -> str:
    """A completion that is empty or only whitespace becomes ``""``."""
    return completion if completion.strip() else ""


RULES: tuple[Rule, ...] = (cut_at_stop, keep_first_line, strip_trailing_whitespace, drop_blank)
"""The rules :func:`finalize` applies, in order."""


def _code_right_of_cursor(suffix: str) -> bool:
    """Whether the rest of the cursor's line holds anything but whitespace."""
    return bool(suffix.split("\n", 1)[0].strip())
