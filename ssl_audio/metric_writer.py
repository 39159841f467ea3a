"""One writer for metrics: JSON lines (always) and TensorBoard (when available)."""

from __future__ import annotations

import json
import math
import os

from absl import logging


def quiet_orbax_logging(min_level: int = logging.WARNING) -> None:
  """Entry points log at INFO; Orbax logs every save step by step there, so keep only
  its records at ``min_level`` and above."""
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(
      lambda r: r.levelno >= min_level or "/orbax/" not in r.pathname)


class MetricWriter:
  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", buffering=1)
    try:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    except ImportError:  # optional: JSON lines are the record of truth
      logging.info("tensorboardX not installed; writing metrics.jsonl only")

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    clean = {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else
                 (None if isinstance(v, float) else v)) for k, v in metrics.items()}
    self._jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    if self._tb is not None:
      for k, v in clean.items():
        if isinstance(v, float):
          self._tb.add_scalar(k, v, step)

  def close(self) -> None:
    if self._jsonl:
      self._jsonl.close()
    if self._tb:
      self._tb.close()
