"""One writer for metrics: JSON lines (always) and TensorBoard (when available).

Only the process it is enabled on writes (the trainer enables process 0). On GCS
an object cannot be appended to, so ``metrics.jsonl`` in a ``gs://`` workdir is
held in memory and re-uploaded whole at most every ``flush_secs`` and on close
(a resumed run first reads back what is there). tensorboardX writes ``gs://``
event files itself (through google-cloud-storage, which gcsfs installs).
"""

from __future__ import annotations

import json
import math
import os
import time

from absl import logging

from ssl_audio import paths


def quiet_orbax_logging(min_level: int = logging.WARNING) -> None:
  """Entry points log at INFO; Orbax logs every save step by step there, so keep only
  its records at ``min_level`` and above."""
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(
      lambda r: r.levelno >= min_level or "/orbax/" not in r.pathname)


class _RemoteLines:
  """An append-only text object on GCS: whole re-uploads, at most every flush_secs."""

  def __init__(self, url: str, flush_secs: float):
    self._path, self._flush_secs = paths.path(url), flush_secs
    self._text = self._path.read_text() if self._path.exists() else ""
    self._dirty, self._t = False, time.time()

  def write(self, line: str) -> None:
    self._text += line
    self._dirty = True
    if time.time() - self._t >= self._flush_secs:
      self.flush()

  def flush(self) -> None:
    if self._dirty:
      paths.write_atomic(self._path, self._text)
      self._dirty, self._t = False, time.time()

  def close(self) -> None:
    self.flush()


class MetricWriter:
  def __init__(self, workdir: str, enabled: bool = True, flush_secs: float = 30.0):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if not enabled:
      return
    paths.mkdir(workdir)
    jsonl = os.path.join(workdir, "metrics.jsonl")
    self._jsonl = (_RemoteLines(jsonl, flush_secs) if paths.is_remote(jsonl)
                   else open(jsonl, "a", buffering=1))
    try:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    except ImportError as e:  # optional: JSON lines are the record of truth
      logging.warning("no TensorBoard summaries (%s); writing metrics.jsonl only", e)

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
