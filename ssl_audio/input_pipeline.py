"""Manifests -> Grain datasets of task examples, batched on the host.

Per example (in worker processes when ``data.num_workers`` > 0): pick a random
window of ``task.clip_samples`` inside the file (or its [start, end] segment),
decode only that window (soundfile), down-mix, resample (soxr), then let the task
cut its slices and targets. With ``data.packed`` the rows are decoded once into a
packed int16 store (``ssl_audio.packed``) and a window is a copy out of it. Raw
audio travels as int16; the log-mel runs on the accelerator inside the step.

Bad input never stops a run. Rows too short for the task (from their segment,
``duration`` column or file header) and files whose header cannot be read are
left out once when the pipeline is built, named in a warning each and counted
(``filtered_files``). A file that still fails to decode, is empty, silent,
non-finite or too short becomes a marker that the host-side batcher skips,
counts (``skipped_files``, per draw) and names once in a warning. Only when every
file of the manifest has failed does the run stop, with an error that says so.

The iterator state (Grain's, plus the skip counters) is a small JSON dict saved
in every checkpoint, so a resumed run sees exactly the batches the uninterrupted
run would have seen.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from typing import Any

import grain
import jax
import numpy as np
import soundfile as sf
from absl import flags, logging

from ssl_audio import audio as audio_lib
from ssl_audio import packed as packed_lib
from ssl_audio import paths as paths_lib
from ssl_audio.manifest import Manifest
from ssl_audio.tasks.base import Task

BAD = "_bad"


class AllFilesBad(RuntimeError):
  pass


@dataclasses.dataclass(frozen=True)
class ExampleMaker:
  """Row index + rng -> task example (or a bad-file marker). Runs in the workers."""
  paths: np.ndarray                 # [rows] paths (object), absolute or under base_dir
  segments: np.ndarray              # [rows, 2] start, end in seconds; NaN = open
  labels: np.ndarray | None         # [rows] int32
  task: Task
  sample_rate: int
  base_dir: str = ""                # joined per draw: no second array of 1M full paths
  packed: str = ""                  # a packed store's folder (ssl_audio.packed): copy, not decode

  def path(self, i: int) -> str:
    return paths_lib.join(self.base_dir, self.paths[i]) if self.base_dir else self.paths[i]

  def packed_clip(self, i: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of task.clip_samples of row i, copied from the packed store."""
    store = packed_lib.open_store(self.packed)   # memory-mapped once per worker process
    n, want = store.length(i), self.task.clip_samples
    start = int(rng.integers(0, n - want + 1)) if n > want else 0
    clip = store.window(i, start, want)
    if len(clip) < self.task.min_samples:
      audio_lib.check_usable(clip, self.sample_rate, self.task.min_samples)   # says why
    if not clip.any():   # int16 samples: a peak under 1e-6 (silence) is all zeros
      raise audio_lib.BadAudio("silent")
    return clip

  def window(self, i: int, rng: np.random.Generator) -> tuple[float | None, float | None]:
    """A random window of task.clip_samples inside row i, in the file's seconds."""
    start, end = (None if np.isnan(v) else float(v) for v in self.segments[i])
    info = audio_lib.info(self.path(i))
    file_dur = info.frames / info.samplerate
    start = 0.0 if start is None else min(start, file_dur)
    end = file_dur if end is None else min(end, file_dur)
    want = self.task.clip_samples / self.sample_rate
    if end - start > want:
      # Quantise the offset to whole source samples, so decoding is exact.
      n_opts = int((end - start - want) * info.samplerate)
      start += int(rng.integers(0, n_opts + 1)) / info.samplerate
      end = start + want
    return start, end

  def __call__(self, i: int, rng: np.random.Generator) -> dict[str, Any]:
    path = self.path(i)
    try:
      if self.packed:
        clip = self.packed_clip(i, rng)
      else:
        start, end = self.window(i, rng)
        clip = audio_lib.load_audio(path, self.sample_rate, start, end,
                                    min_samples=self.task.min_samples)
        clip = clip[:self.task.clip_samples]
      ex = self.task.sample(clip, rng)
    except (audio_lib.BadAudio, sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
      return {BAD: path, "reason": str(e) or type(e).__name__}
    ex["audio"] = audio_lib.to_int16(ex["audio"])
    if self.labels is not None:
      ex["label"] = np.int32(self.labels[i])
    return ex


class Batcher:
  """Pulls examples from a Grain iterator, skips bad ones, stacks batches.

  ``get_state()`` after a batch is the state to resume from to see the next batch.
  """

  def __init__(self, it: grain.DatasetIterator, batch_size: int, num_rows: int):
    self._it = it
    self.batch_size = batch_size
    self.num_rows = num_rows
    self.skipped = 0
    self.good = 0
    self.filtered: dict[str, str] = {}   # rows left out when the pipeline was built
    self._consecutive_bad = 0
    self._warned: set[str] = set()

  def __iter__(self):
    return self

  def _next_example(self) -> dict[str, Any]:
    while True:
      ex = next(self._it)
      if BAD not in ex:
        self.good += 1
        self._consecutive_bad = 0
        return ex
      self.skipped += 1
      self._consecutive_bad += 1
      if ex[BAD] not in self._warned:
        self._warned.add(ex[BAD])
        logging.warning("skipping audio %s: %s", ex[BAD], ex["reason"])
      if self._consecutive_bad >= max(2 * self.num_rows, 64) or (
          self.good == 0 and len(self._warned) >= self.num_rows):
        raise AllFilesBad(
            f"no usable audio: {self.skipped} examples skipped in a row over {len(self._warned)} "
            f"files (last: {ex[BAD]}: {ex['reason']}). Check data.pretrain / data.train and "
            "the task's minimum clip length")

  def __next__(self) -> dict[str, np.ndarray]:
    exs = [self._next_example() for _ in range(self.batch_size)]
    return {k: np.stack([e[k] for e in exs]) for k in exs[0]}

  def get_state(self) -> dict:
    return {"grain": self._it.get_state(), "skipped": self.skipped, "good": self.good}

  def set_state(self, state: dict) -> None:
    self._it.set_state(state["grain"])
    self.skipped, self.good = state["skipped"], state["good"]


def exit_with_parent(parent_pid: int, worker_index: int = 0, worker_count: int = 0,
                     poll_s: float = 0.5) -> None:
  """Grain worker init: the worker exits as soon as its parent (the trainer) is gone.

  A SIGKILLed trainer cannot stop its workers, which otherwise live on holding their
  memory. A watch thread rather than PR_SET_PDEATHSIG: that fires when the *thread*
  that spawned the worker ends, and Grain may start workers from a helper thread.
  ``parent_pid`` comes from the trainer, so a parent that died while the worker was
  still importing is noticed too.
  """
  del worker_index, worker_count

  def watch():
    while os.getppid() == parent_pid:
      time.sleep(poll_s)
    os._exit(1)   # reparented: the trainer died

  if os.getppid() != parent_pid:
    os._exit(1)

  threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


def usable_rows(manifest: Manifest, rows: np.ndarray, min_samples: int, sample_rate: int
                ) -> tuple[np.ndarray, dict[str, str]]:
  """The rows long enough for the task, from their durations, checked once when the pipeline
  is built (instead of a skip at every draw); and {path: reason} for the others.

  A row's duration is its [start, end] segment, else its ``duration`` column, else the
  file's header (``soundfile.info``; a file whose header cannot be read is left out too).
  """
  rows = np.asarray(rows, dtype=np.int64)
  seg = manifest.segments()[rows]
  start = np.nan_to_num(seg[:, 0], nan=0.0)
  dur = seg[:, 1] - start
  if "duration" in manifest.columns:
    listed = manifest.columns["duration"][rows]
    use = np.isnan(dur) & (listed != "")
    dur[use] = listed[use].astype(np.float64)
  bad: dict[str, str] = {}
  unreadable = np.zeros(len(rows), bool)
  for j in np.flatnonzero(np.isnan(dur)):   # no segment end, no duration: read the header
    path = manifest.path(int(rows[j]))
    try:
      info = audio_lib.info(path)
      dur[j] = info.frames / info.samplerate - start[j]
    except Exception as e:  # noqa: BLE001  (LibsndfileError, RuntimeError, OSError...)
      bad[path] = f"cannot read the header: {(str(e) or type(e).__name__).splitlines()[0]}"
      unreadable[j] = True
  short = ~unreadable & (dur < (min_samples - 1) / sample_rate)   # 1 sample of resampling slack
  for j in np.flatnonzero(short):
    bad[manifest.path(int(rows[j]))] = (f"too short for the task: {dur[j]:.3f} s, "
                                        f"need {min_samples / sample_rate:.3f} s")
  return rows[~unreadable & ~short], bad


def label_index(manifest: Manifest, classes: list[str] | None = None) -> tuple[list[str], np.ndarray]:
  classes = classes or manifest.labels()
  lookup = {c: k for k, c in enumerate(classes)}
  labels = manifest.column("label")
  missing = sorted(set(labels) - set(lookup))
  if missing:
    raise ValueError(f"{manifest.name}: labels {missing[:5]} not in the class list")
  return classes, np.array([lookup[l] for l in labels], np.int32)


def make_train_iterator(manifest: Manifest, task: Task, batch_size: int, seed: int,
                        num_workers: int = 0, classes: list[str] | None = None,
                        sample_rate: int = 16000, packed_root: str | None = None) -> Batcher:
  """Infinite, shuffled, host-sharded iterator of batches of ``batch_size`` (per host).

  ``packed_root``: decode this host's rows once into a packed int16 store under that
  folder ("" the default cache; ``ssl_audio.packed``) and copy windows from it.
  """
  if len(manifest) == 0:
    raise ValueError(f"{manifest.name}: no rows")
  labels = None
  if task.needs_labels:
    _, labels = label_index(manifest, classes)
  maker = ExampleMaker(paths=manifest.columns["path"], segments=manifest.segments(),
                       labels=labels, task=task, sample_rate=sample_rate,
                       base_dir=str(manifest.base_dir))
  rows = np.arange(len(manifest))[jax.process_index()::jax.process_count()]
  if len(rows) == 0:
    raise ValueError(f"{manifest.name}: {len(manifest)} rows cannot be shared by "
                     f"{jax.process_count()} hosts")
  if packed_root is None:
    rows, filtered = usable_rows(manifest, rows, task.min_samples, sample_rate)
  else:   # every row of this host whatever the task, so one store serves every task
    store = packed_lib.ensure(manifest, rows, sample_rate, packed_root)
    rows, filtered = store.usable_rows(manifest, task.min_samples)
    maker = dataclasses.replace(maker, packed=store.folder)
  for path, reason in filtered.items():
    logging.warning("leaving out audio %s: %s", path, reason)
  if filtered:
    logging.warning("%s: left out %d of %d rows (too short or unreadable), %d left",
                    manifest.name, len(filtered), len(filtered) + len(rows), len(rows))
  if len(rows) == 0:
    raise AllFilesBad(f"{manifest.name}: no usable audio: every one of {len(filtered)} rows is "
                      f"too short for the task or unreadable (e.g. {next(iter(filtered.items()))})")
  ds = (grain.MapDataset.source(rows)   # an int64 array: 8 bytes a row, not a list of ints
        .shuffle(seed=seed)
        .repeat(None)
        .random_map(maker, seed=seed + 1))
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=0 if num_workers else 2,
                                               prefetch_buffer_size=0 if num_workers else 2 * batch_size))
  if num_workers > 0:
    # Grain's workers read absl flags; outside an absl app (notebooks, tests) use defaults.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers,
                                                           per_worker_buffer_size=batch_size),
                              worker_init_fn=functools.partial(exit_with_parent, os.getpid()))
  batcher = Batcher(iter(it_ds), batch_size, len(rows))
  batcher.filtered = filtered
  return batcher
