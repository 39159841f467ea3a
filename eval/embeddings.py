"""Frozen-encoder features of every clip of a labelled benchmark, cached on disk.

("Task" is kept for pretext tasks; the labelled downstream datasets are benchmarks.)
A benchmark is any data-source name ``ssl_audio.manifest.resolve`` accepts with a
``label`` column: ``suite:NAME``, ``manifest:PATH`` or ``folder:PATH``. Rows without
a ``split`` get one from ``ensure_split`` (a hash of speaker, else source, else the
file name). Each clip is cut into non-overlapping 96-frame slices (a clip shorter
than one slice is zero-padded to one); every slice is embedded by the frozen
encoder, jitted, in fixed-size batches sharded over the ``("data",)`` mesh (the
last batch padded). Files that fail to decode are skipped and counted.

Cache: ``<cache_dir>/<benchmark>-<weights>-<key>.npz`` where ``key`` hashes the
weights (checkpoint step or untrained seed, and BatchNorm re-estimation), the
benchmark's name, the manifest's content, the front-end settings, ``max_clips``
and the features (``embedding``, ``pooled``, ``blocks``), so a second run with the same inputs loads
the file instead of decoding and embedding again.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import hashlib
import io
import json
import os
import time
from typing import Callable, Iterator, Sequence

import numpy as np
from absl import logging
from etils.epath import Path

import data.suite  # noqa: F401  registers suite: (every eval entry point resolves through here)
from ssl_audio import audio as audio_lib
from ssl_audio import manifest as manifest_lib
from ssl_audio import paths
from ssl_audio.pretrained import split_slices

CACHE_VERSION = 1


# ============================================================================ benchmarks

def load_benchmark(spec: str) -> manifest_lib.Manifest:
  """The labelled manifest of a benchmark, with a split column; unlabelled rows dropped."""
  m = manifest_lib.resolve(spec)
  if not m.has("label"):
    raise manifest_lib.ManifestError(f"{spec}: a probe task needs a 'label' column "
                                     f"(or a folder-per-class tree)")
  m = m.select(m.column("label") != "")
  m = manifest_lib.ensure_split(m)
  if not np.any(m.column("split") == "train") or not np.any(m.column("split") == "test"):
    counts = collections.Counter(m.column("split"))
    raise manifest_lib.ManifestError(f"{spec}: need 'train' and 'test' rows, have {dict(counts)}")
  return m


def manifest_hash(m: manifest_lib.Manifest) -> str:
  h = hashlib.sha1()
  h.update(str(m.base_dir).encode())
  for col in ("path", "label", "split", "start", "end", "speaker", "source"):
    if col in m.columns:
      h.update(col.encode() + b"\0" + "\x1f".join(map(str, m.columns[col])).encode() + b"\0")
  return h.hexdigest()[:16]


def subset_rows(m: manifest_lib.Manifest, max_clips: int | None, seed: int = 0) -> np.ndarray:
  """Row indices: all, or a deterministic random ``max_clips`` keeping every split present."""
  n = len(m)
  if not max_clips or max_clips >= n:
    return np.arange(n)
  rng = np.random.default_rng(seed)
  splits = m.column("split")
  out = []
  for s in manifest_lib.SPLITS:  # proportional per split, at least 1 row each
    idx = np.flatnonzero(splits == s)
    if len(idx):
      k = max(1, int(round(max_clips * len(idx) / n)))
      out.append(rng.permutation(idx)[:k])
  return np.sort(np.concatenate(out))


# ============================================================================ decoding

@dataclasses.dataclass
class Decoded:
  """Slices of the clips that decoded: int16 [n_slices, slice_samples] + clip index."""
  slices: np.ndarray
  clip: np.ndarray            # [n_slices] index into the clip arrays below
  rows: np.ndarray            # [n_clips] manifest row of each clip
  skipped: int
  reasons: dict


def _decode(m: manifest_lib.Manifest, i: int, sample_rate: int) -> np.ndarray:
  start, end = m.segment(i)
  return audio_lib.load_audio(m.path(i), sample_rate, start=start, end=end, min_samples=1)


def iter_clips(m: manifest_lib.Manifest, rows: Sequence[int], sample_rate: int,
               workers: int = 2, prefetch: int = 16) -> Iterator[tuple[int, np.ndarray | str]]:
  """(row, float32 audio) in order, or (row, reason) for a file that failed.

  Decoding runs in a small thread pool (libsndfile and soxr release the GIL).
  """
  rows = list(rows)
  with cf.ThreadPoolExecutor(max(1, workers)) as pool:
    futures = collections.deque()
    it = iter(rows)
    for r in it:
      futures.append((r, pool.submit(_decode, m, r, sample_rate)))
      if len(futures) >= prefetch:
        break
    while futures:
      r, fut = futures.popleft()
      try:
        yield r, fut.result()
      except audio_lib.BadAudio as e:
        yield r, str(e).split(":")[0]
      except Exception as e:  # never crash a long eval on one file
        yield r, f"{type(e).__name__}"
      nxt = next(it, None)
      if nxt is not None:
        futures.append((nxt, pool.submit(_decode, m, nxt, sample_rate)))


def decode_benchmark(m: manifest_lib.Manifest, rows: Sequence[int], sample_rate: int,
                slice_samples: int, workers: int = 2) -> Decoded:
  """All clips as int16 slices in memory (for the in-training probe's audio cache)."""
  slices, clip, ok_rows, reasons = [], [], [], collections.Counter()
  for r, x in iter_clips(m, rows, sample_rate, workers):
    if isinstance(x, str):
      reasons[x] += 1
      continue
    s = split_slices(x, slice_samples)
    slices.append(audio_lib.to_int16(s))
    clip.append(np.full(len(s), len(ok_rows), np.int32))
    ok_rows.append(r)
  if not ok_rows:
    raise RuntimeError(f"{m.name}: no clip could be decoded ({dict(reasons)})")
  return Decoded(np.concatenate(slices), np.concatenate(clip), np.asarray(ok_rows),
                 int(sum(reasons.values())), dict(reasons))


# ============================================================================ embedding

@dataclasses.dataclass
class Embedded:
  """Slice embeddings of a task and per-clip metadata (what the probe needs)."""
  emb: np.ndarray             # [n_slices, D] float32
  clip: np.ndarray            # [n_slices] int32, index into the per-clip arrays
  labels: np.ndarray          # [n_clips] str
  splits: np.ndarray          # [n_clips] str
  groups: np.ndarray          # [n_clips] str: speaker / source / file (for held-out parts)
  paths: np.ndarray           # [n_clips] str
  domains: np.ndarray | None = None   # [n_clips] str: package / source (the "package" holdout)
  skipped: int = 0
  reasons: dict = dataclasses.field(default_factory=dict)
  info: dict = dataclasses.field(default_factory=dict)

  @property
  def n_clips(self) -> int:
    return len(self.labels)

  def domain_keys(self) -> np.ndarray:
    """The clips' domains; the groups where none were given."""
    return self.groups if self.domains is None else self.domains

  def save(self, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, emb=self.emb, clip=self.clip, labels=self.labels.astype(str),
             splits=self.splits.astype(str), groups=self.groups.astype(str),
             paths=self.paths.astype(str), domains=self.domain_keys().astype(str),
             skipped=np.int64(self.skipped),
             meta=np.array(json.dumps({"reasons": self.reasons, "info": self.info})))
    paths.write_atomic(path, buf.getvalue())

  @classmethod
  def load(cls, path: Path) -> "Embedded":
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      return cls(emb=z["emb"], clip=z["clip"], labels=z["labels"].astype(object),
                 splits=z["splits"].astype(object), groups=z["groups"].astype(object),
                 paths=z["paths"].astype(object),
                 # a cache written before domains were stored raises KeyError: re-embedded
                 domains=z["domains"].astype(object), skipped=int(z["skipped"]),
                 reasons=meta["reasons"], info=meta["info"])


def clip_metadata(m: manifest_lib.Manifest, rows: np.ndarray) -> dict:
  return {"labels": np.asarray(m.column("label"), object)[rows],
          "splits": np.asarray(m.column("split"), object)[rows],
          "groups": manifest_lib.group_keys(m)[rows],
          "domains": manifest_lib.domain_keys(m)[rows],
          "paths": np.array([m.path(i) for i in rows], dtype=object)}


def embed_decoded(embed_batch: Callable[[np.ndarray], np.ndarray], d: Decoded,
                  m: manifest_lib.Manifest) -> Embedded:
  """Embeds already-decoded slices (the in-training probe re-embeds the same audio)."""
  return Embedded(emb=np.asarray(embed_batch(d.slices), np.float32), clip=d.clip,
                  skipped=d.skipped, reasons=d.reasons, **clip_metadata(m, d.rows))


def embed_stream(embed_batch: Callable[[np.ndarray], np.ndarray], m: manifest_lib.Manifest,
                 rows: Sequence[int], sample_rate: int, slice_samples: int,
                 batch_size: int = 256, workers: int = 2, log_every_s: float = 30.0
                 ) -> Embedded:
  """Decode -> slice -> embed in batches, holding only one batch of audio at a time."""
  pending: list[np.ndarray] = []
  n_pending = 0
  embs, clip, ok_rows, reasons = [], [], [], collections.Counter()
  t0 = t_log = time.time()

  def flush():
    nonlocal pending, n_pending
    if pending:
      embs.append(np.asarray(embed_batch(np.concatenate(pending)), np.float32))
      pending, n_pending = [], 0

  for k, (r, x) in enumerate(iter_clips(m, rows, sample_rate, workers)):
    if isinstance(x, str):
      reasons[x] += 1
      continue
    s = audio_lib.to_int16(split_slices(x, slice_samples))
    pending.append(s)
    n_pending += len(s)
    clip.append(np.full(len(s), len(ok_rows), np.int32))
    ok_rows.append(r)
    if n_pending >= batch_size:
      flush()
    if time.time() - t_log > log_every_s:
      logging.info("%s: %d/%d clips embedded (%.0f s)", m.name, k + 1, len(rows), time.time() - t0)
      t_log = time.time()
  flush()
  if not ok_rows:
    raise RuntimeError(f"{m.name}: no clip could be decoded ({dict(reasons)})")
  emb = np.concatenate(embs)
  return Embedded(emb=emb, clip=np.concatenate(clip), skipped=int(sum(reasons.values())),
                  reasons=dict(reasons), **clip_metadata(m, np.asarray(ok_rows)))


def cache_path(cache_dir: str | os.PathLike, benchmark: str, weights: str, m: manifest_lib.Manifest,
               frontend: dict, max_clips: int | None, features: str = "embedding") -> Path:
  key = {"v": CACHE_VERSION, "weights": weights, "task": benchmark, "manifest": manifest_hash(m),
         "frontend": frontend, "max_clips": max_clips or 0}
  if features != "embedding":   # the default keeps the cache names written before the option
    key["features"] = features
  h = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
  return paths.path(cache_dir) / f"{manifest_lib.short_name(benchmark, 'file')}-{weights}-{h}.npz"


def embed_benchmark(embedder, benchmark: str, cache_dir: str | os.PathLike | None = None,
                    max_clips: int | None = None, workers: int = 2, refresh: bool = False
                    ) -> Embedded:
  """Features of every clip of ``benchmark`` by ``embedder`` (an ``Embedder``), cached.

  ``cache_dir`` defaults to ``<workdir>/eval/cache`` for a ``Pretrained``; None and
  no workdir: no cache. The key holds the weights' identity and the features.
  """
  m = load_benchmark(benchmark)
  workdir = getattr(embedder, "workdir", "")
  if cache_dir is None and workdir:
    cache_dir = os.path.join(workdir, "eval", "cache")
  path = None
  if cache_dir is not None:
    path = cache_path(cache_dir, benchmark, embedder.identity, m, embedder.frontend.to_dict(), max_clips,
                      embedder.features)
    if path.is_file() and not refresh:
      try:
        e = Embedded.load(path)
        logging.info("%s: cached embeddings %s", benchmark, path)
        e.info["cached"] = True
        return e
      except Exception as err:  # a damaged cache file is rebuilt, never fatal
        logging.warning("%s: unreadable cache %s (%s): recomputing", benchmark, path, err)
  rows = subset_rows(m, max_clips)
  t0 = time.time()
  e = embed_stream(embedder.embed_batch, m, rows, embedder.sample_rate, embedder.slice_samples,
                   batch_size=embedder.batch_size, workers=workers)
  e.info = {"task": benchmark, "weights": embedder.identity, "features": embedder.features,
            "manifest": manifest_hash(m),
            "rows": int(len(rows)), "clips": e.n_clips, "slices": int(len(e.emb)),
            "seconds": round(time.time() - t0, 1), "cached": False}
  if e.skipped:
    logging.warning("%s: skipped %d unreadable files: %s", benchmark, e.skipped, e.reasons)
  if path is not None:
    e.save(path)
  return e
