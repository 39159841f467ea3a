"""Evaluators chosen by config (the big_vision pattern), and their registry.

``config.evals`` maps a name to a ConfigDict whose ``type`` picks an evaluator
class (default ``linear_probe``). An evaluator has ``every_steps`` and
``run(embedder, step) -> {metric: float}``: the trainer hands it an ``Embedder``
over the current encoder weights, the evaluation CLI one over a checkpoint's, so
both run the same code. Evaluators live above the library (``eval/``) and
register themselves here on import; ``python main.py`` imports them.
"""

from __future__ import annotations

from typing import Callable

_TYPES: dict[str, Callable] = {}
DEFAULT_TYPE = "linear_probe"


def register(type_name: str):
  """Class decorator: ``@evaluators.register("linear_probe")``."""
  def wrap(cls):
    _TYPES[type_name] = cls
    return cls
  return wrap


def get(type_name: str, key: str = "type") -> Callable:
  if type_name not in _TYPES:
    hint = (" (the linear probe registers itself when eval.evaluators is imported; "
            "python main.py and python -m eval.linear_eval do)" if not _TYPES else "")
    raise ValueError(f"config.evals.{key}: unknown evaluator {type_name!r}; "
                     f"registered: {sorted(_TYPES)}{hint}")
  return _TYPES[type_name]


def _type(name: str, ev) -> str:
  return ev["type"] if "type" in ev else DEFAULT_TYPE


def check_configs(config) -> None:
  """Raises ValueError naming the key for an unknown type or a bad setting."""
  for name, ev in (config.get("evals") or {}).items():
    cls = get(_type(name, ev), f"{name}.type")
    check = getattr(cls, "check_config", None)
    if check is not None:
      check(name, ev)


def make_evaluators(config, frontend, mesh) -> list:
  return [get(_type(name, ev), f"{name}.type")(name, ev, frontend=frontend, mesh=mesh)
          for name, ev in (config.get("evals") or {}).items()]
