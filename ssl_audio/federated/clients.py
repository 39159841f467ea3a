"""Clients out of a manifest, and each client's batches for a round.

A client is a group of manifest rows: per row, the first non-empty of the
``federated.group_by`` columns (default speaker, else source, else the file itself),
so every client sees only its own clips: non-IID by construction. ``iid=True`` deals
the same rows out again at random, keeping every client's size: the IID control.

Per row, not per manifest as ``manifest.group_keys`` does (which picks one column for
the whole manifest): in ``suite:pretrain`` only the speech half has a speaker, and the
other half would otherwise become a single client with an empty name.

Batches are a pure function of (seed, round, client): no iterator state to save, so
a resumed run samples what an uninterrupted one does. A client's rows are drawn with
replacement from its own rows only; the task's own sampler (``task.sample`` through
``input_pipeline.ExampleMaker``) cuts the examples.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses

import numpy as np
from absl import logging

from ssl_audio import input_pipeline
from ssl_audio.config_validation import ConfigError
from ssl_audio.manifest import Manifest
from ssl_audio.tasks.base import Task

FILE = "file"   # the pseudo-column "the file itself"


@dataclasses.dataclass(frozen=True)
class Clients:
  names: list[str]            # client id -> "column:value"
  rows: list[np.ndarray]      # client id -> manifest row indices

  def __len__(self) -> int:
    return len(self.names)

  @property
  def sizes(self) -> np.ndarray:
    """Clips per client: FedAvg's weights."""
    return np.array([len(r) for r in self.rows], np.int64)


def client_keys(m: Manifest, columns: list[str]) -> np.ndarray:
  """Per row, ``column:value`` of the first of ``columns`` with a value (``file``: the path)."""
  keys = np.full(len(m), "", dtype=object)
  for col in columns:
    todo = keys == ""
    if not todo.any():
      break
    if col == FILE:
      values = np.asarray(m.column("path"), dtype=object)
    elif col in m.columns:
      values = np.asarray(m.columns[col], dtype=object)
    else:
      continue
    fill = todo & (values != "")
    keys[fill] = [f"{col}:{v}" for v in values[fill]]
  missing = int(np.sum(keys == ""))
  if missing:
    raise ConfigError(
        f"config.federated.group_by: {missing} of {len(m)} rows of {m.name} have no value in any "
        f"of the columns {columns} (manifest columns: {sorted(m.columns)}); add '{FILE}' to "
        "make each such file its own client")
  return keys


def partition(m: Manifest, columns: list[str], iid: bool = False, seed: int = 0) -> Clients:
  keys = client_keys(m, columns)
  names, inverse = np.unique(keys.astype(str), return_inverse=True)
  rows = [np.flatnonzero(inverse == k) for k in range(len(names))]
  if iid:   # the same client sizes, rows dealt out at random
    perm = np.random.default_rng([seed, 7]).permutation(len(m))
    bounds = np.cumsum([0] + [len(r) for r in rows])
    rows = [np.sort(perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    names = np.array([f"iid:{k}" for k in range(len(names))])
  return Clients([str(n) for n in names], rows)


class ClientSampler:
  """Cohorts and client batches ``{key: [local_steps, batch, ...]}`` for a round."""

  def __init__(self, manifest: Manifest, task: Task, clients: Clients, batch_size: int,
               local_steps: int, seed: int, num_workers: int = 0,
               classes: list[str] | None = None, sample_rate: int = 16000):
    labels = None
    if task.needs_labels:
      _, labels = input_pipeline.label_index(manifest, classes)
    self.maker = input_pipeline.ExampleMaker(paths=manifest.paths(), segments=manifest.segments(),
                                             labels=labels, task=task, sample_rate=sample_rate)
    self.clients = clients
    self.batch_size = batch_size
    self.local_steps = local_steps
    self.seed = seed
    self.skipped = 0
    self._warned: set[str] = set()
    self._pool = concurrent.futures.ThreadPoolExecutor(max(1, num_workers))

  # --------------------------------------------------------------------- cohorts
  def cohort(self, rnd: int, size: int, poisson: bool = False) -> np.ndarray:
    """Client ids of round ``rnd``: ``size`` distinct clients uniformly, or (DP) each
    client independently with probability size / num_clients."""
    rng = np.random.default_rng([self.seed, 1, rnd])
    n = len(self.clients)
    if poisson:
      return np.flatnonzero(rng.random(n) < size / n)
    return np.sort(rng.choice(n, size, replace=False))

  # --------------------------------------------------------------------- batches
  def batches(self, rnd: int, client: int) -> dict[str, np.ndarray] | None:
    """This client's ``local_steps`` batches of round ``rnd``; None when none of the
    client's clips gives usable audio (the client drops out of the round)."""
    rows = self.clients.rows[client]
    need = self.local_steps * self.batch_size
    rng = np.random.default_rng([self.seed, 2, rnd, client])
    good: list[dict] = []
    tried = 0
    limit = max(2 * need, need + 64)
    while len(good) < need and tried < limit:
      todo = need - len(good)
      picks = rows[rng.integers(0, len(rows), todo)]
      rngs = [np.random.default_rng([self.seed, 3, rnd, client, tried + j]) for j in range(todo)]
      tried += todo
      for ex in self._pool.map(self.maker, picks, rngs):
        if input_pipeline.BAD in ex:
          self.skipped += 1
          if ex[input_pipeline.BAD] not in self._warned:
            self._warned.add(ex[input_pipeline.BAD])
            logging.warning("skipping audio %s: %s", ex[input_pipeline.BAD], ex["reason"])
        else:
          good.append(ex)
    if len(good) < need:
      logging.warning("client %s: no usable audio in %d draws; it sits this round out",
                      self.clients.names[client], tried)
      return None
    stacked = {k: np.stack([e[k] for e in good]) for k in good[0]}
    return {k: v.reshape(self.local_steps, self.batch_size, *v.shape[1:])
            for k, v in stacked.items()}

  def close(self) -> None:
    self._pool.shutdown()
