"""Small utilities for a to-do list application."""

import json
from dataclasses import dataclass, field


@dataclass
class Task:
    title: str
    done: bool = False
    tags: list[str] = field(default_factory=list)


def load_tasks(path: str) -> list[Task]:
    """Read tasks from a JSON file."""
    with open(path) as f:
        data = json.load(f)
    return [Task(**item) for item in data]
