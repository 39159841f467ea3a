"""One writer for metrics: JSON lines (always) and TensorBoard (when available).

Only the process it is enabled on writes (the trainer enables process 0). On GCS
an object cannot be appended to, so in a ``gs://`` workdir ``metrics.jsonl`` and the
TensorBoard event file are held in memory and re-uploaded whole through
``ssl_audio.paths`` at most every ``flush_secs`` and on close (a resumed run first
reads back the JSON lines; TensorBoard starts a new event file, as it does locally).
tensorboardX's own gs:// writer is not used: it needs google-cloud-storage and
uploads again from ``__del__`` at exit, retrying for minutes if the bucket is gone.
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


class _RemoteRecords:
  """A tensorboardX record writer for a URL: whole re-uploads on flush."""

  def __init__(self, url: str):
    self._url, self._data, self._dirty = url, bytearray(), False

  def write(self, data: bytes) -> None:
    self._data += data
    self._dirty = True

  def flush(self) -> None:
    if self._dirty:
      paths.write_atomic(self._url, bytes(self._data))
      self._dirty = False

  def close(self) -> None:
    self.flush()


class _RemoteRecordsFactory:
  def open(self, url: str) -> _RemoteRecords:
    return _RemoteRecords(url)

  def directory_check(self, url: str) -> None:
    paths.mkdir(url)


def _summary_writer(logdir: str, flush_secs: float):
  from tensorboardX import SummaryWriter
  if paths.is_remote(logdir):
    from tensorboardX import record_writer
    record_writer.register_writer_factory(logdir.split("://", 1)[0], _RemoteRecordsFactory())
    return SummaryWriter(logdir, flush_secs=flush_secs)
  return SummaryWriter(logdir)


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
      self._tb = _summary_writer(os.path.join(workdir, "tensorboard"), flush_secs)
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
