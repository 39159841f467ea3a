"""In-training evaluators, built from ``config.evals``.

Each evaluator has ``every_steps`` and ``run(state, step) -> dict`` of metrics
(prefixed by its name) that the trainer writes to metrics.jsonl. The downstream
probe lives in ``eval/``; this module only adapts it to the training loop.
"""

from __future__ import annotations


def make_evaluators(config, task) -> list:
  evals = []
  for name, ev in (config.get("evals") or {}).items():
    from eval import in_training  # imported only when a probe is configured
    evals.append(in_training.ProbeEvaluator(name, ev, config, task))
  return evals
