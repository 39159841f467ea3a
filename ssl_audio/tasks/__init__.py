"""Registry of pretext tasks and baselines: ``config.task.name`` -> Task class."""

from __future__ import annotations

from ssl_audio.tasks.base import Task

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
  if not cls.name:
    raise ValueError(f"{cls} has no name")
  _REGISTRY[cls.name] = cls
  return cls


def names() -> list[str]:
  return sorted(_REGISTRY)


def get(name: str) -> type[Task]:
  if name not in _REGISTRY:
    raise ValueError(f"config.task.name: unknown task {name!r}; known: {names()}")
  return _REGISTRY[name]


def make_task(config, frontend) -> Task:
  return get(config.task.name)(config, frontend)


# Importing a task module registers it.
from ssl_audio.tasks import temporal_gap  # noqa: E402,F401
from ssl_audio.tasks import audio2vec  # noqa: E402,F401
from ssl_audio.tasks import autoencoder  # noqa: E402,F401
from ssl_audio.tasks import triplet  # noqa: E402,F401
from ssl_audio.tasks import supervised  # noqa: E402,F401
from ssl_audio.tasks import multihead  # noqa: E402,F401
from ssl_audio.tasks import cola  # noqa: E402,F401
from ssl_audio.tasks import distill  # noqa: E402,F401
