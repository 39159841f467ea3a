"""The linear-probe evaluator: one code path for the in-training probe and the CLI.

In a config (``type`` defaults to ``linear_probe``; ``task`` is accepted for ``benchmark``)::

  c.evals.msn = ml_collections.ConfigDict(dict(type="linear_probe", benchmark="suite:msn",
                                               every_steps=500, max_clips=600))

``run(embedder, step)`` embeds the benchmark's clips with the embedder's weights
(non-overlapping slices, jitted, sharded over the ``data`` mesh), fits the linear
probe (``eval.probe.linear_probe``: lr / weight-decay grid picked on valid) and
returns ``{name/accuracy, name/balanced_accuracy, name/seconds}``. In training the
benchmark's audio is decoded once and kept in memory as int16 slices (later calls
only re-embed it); the CLI (``eval.linear_eval``) instead caches embeddings on disk
per checkpoint and calls ``evaluate`` for the full result.
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from eval import embeddings as emb_lib
from eval import probe
from ssl_audio import embed as embed_lib
from ssl_audio import evaluators

# The in-training probe is quick: one seed and a small grid (the CLI's defaults are larger).
TRAINING_DEFAULTS = dict(seeds=1, probe_steps=500, lrs=(1e-3, 1e-2), wds=(0.0, 1e-3, 1e-1),
                         max_clips=None, every_steps=1000, features="embedding",
                         clip_pooling="logits", bn_reestimate=False, valid_holdout="package")


@evaluators.register("linear_probe")
class LinearProbeEvaluator:

  def __init__(self, name: str, ev, frontend=None, mesh=None, cache_dir=None,
               keep_audio: bool = True, refresh: bool = False):
    self.check_config(name, ev)
    get = lambda k: ev[k] if k in ev and ev[k] is not None else TRAINING_DEFAULTS[k]
    self.name = name
    self.benchmark = ev["benchmark"] if "benchmark" in ev else ev["task"]
    self.every_steps = int(get("every_steps"))
    self.max_clips = get("max_clips") or None
    self.seeds = tuple(range(int(get("seeds"))))
    self.probe_steps = int(get("probe_steps"))
    self.lrs, self.wds = tuple(get("lrs")), tuple(get("wds"))
    self.features, self.clip_pooling = get("features"), get("clip_pooling")
    self.bn_reestimate = bool(get("bn_reestimate"))
    self.valid_holdout = get("valid_holdout")
    self.cache_dir, self.keep_audio, self.refresh = cache_dir, keep_audio, refresh
    self._manifest = None
    self._decoded = None

  @staticmethod
  def check_config(name: str, ev) -> None:
    if "benchmark" not in ev and "task" not in ev:
      raise ValueError(f"config.evals.{name}.benchmark: missing (a labelled source, e.g. suite:msn)")
    every = ev["every_steps"] if "every_steps" in ev else TRAINING_DEFAULTS["every_steps"]
    if not int(every) > 0:
      raise ValueError(f"config.evals.{name}.every_steps: must be positive, got {every}")
    seeds = ev["seeds"] if "seeds" in ev else 1
    if not int(seeds) >= 1:
      raise ValueError(f"config.evals.{name}.seeds: must be >= 1, got {seeds}")
    if "features" in ev and ev["features"] not in embed_lib.FEATURES:
      raise ValueError(f"config.evals.{name}.features: {ev['features']!r} is not one of "
                       f"{embed_lib.FEATURES}")
    if "clip_pooling" in ev and ev["clip_pooling"] not in tuple(probe.CLIP_PREDICTION):
      raise ValueError(f"config.evals.{name}.clip_pooling: {ev['clip_pooling']!r} is not one of "
                       f"{tuple(probe.CLIP_PREDICTION)}")
    if "valid_holdout" in ev and ev["valid_holdout"] not in tuple(probe.VALID_HOLDOUTS):
      raise ValueError(f"config.evals.{name}.valid_holdout: {ev['valid_holdout']!r} is not one of "
                       f"{tuple(probe.VALID_HOLDOUTS)}")

  def _audio(self, sample_rate: int, slice_samples: int):
    if self._decoded is None:
      t0 = time.time()
      m = emb_lib.load_benchmark(self.benchmark)
      rows = emb_lib.subset_rows(m, self.max_clips)
      self._decoded = emb_lib.decode_benchmark(m, rows, sample_rate, slice_samples)
      self._manifest = m
      logging.info("probe %s: %d clips, %d slices decoded in %.1f s (%d skipped)", self.name,
                   len(self._decoded.rows), len(self._decoded.slices), time.time() - t0,
                   self._decoded.skipped)
    return self._manifest, self._decoded

  def prepare(self, embedder):
    """The embedder as this evaluator scores it: its features, and BatchNorm statistics
    re-estimated on the benchmark's train clips when ``bn_reestimate``."""
    embedder = embedder.with_features(self.features)
    if not self.bn_reestimate:
      return embedder
    if self.keep_audio:   # the benchmark's slices are in memory already: no second decode
      m, d = self._audio(embedder.sample_rate, embedder.slice_samples)
      train = np.asarray(m.column("split"))[d.rows][d.clip] == "train"
      return embed_lib.reestimate_batch_stats(embedder, d.slices[train])
    m = emb_lib.load_benchmark(self.benchmark)
    rows = emb_lib.subset_rows(m, self.max_clips)
    rows = rows[m.column("split")[rows] == "train"]
    d = emb_lib.decode_benchmark(m, rows, embedder.sample_rate, embedder.slice_samples)
    return embed_lib.reestimate_batch_stats(embedder, d.slices)

  def embeddings(self, embedder) -> emb_lib.Embedded:
    embedder = self.prepare(embedder)
    if self.keep_audio:
      m, d = self._audio(embedder.sample_rate, embedder.slice_samples)
      return emb_lib.embed_decoded(embedder.embed_batch, d, m)
    return emb_lib.embed_benchmark(embedder, self.benchmark, cache_dir=self.cache_dir,
                                   max_clips=self.max_clips, refresh=self.refresh)

  def evaluate(self, embedder) -> tuple[emb_lib.Embedded, dict]:
    """(embeddings, the probe's full result: per seed, mean, interval, chance, settings)."""
    e = self.embeddings(embedder)
    r = probe.linear_probe(e, seeds=self.seeds, lrs=self.lrs, wds=self.wds,
                           steps=self.probe_steps, clip_pooling=self.clip_pooling,
                           valid_holdout=self.valid_holdout)
    r["protocol"] = self.protocol
    return e, r

  @property
  def protocol(self) -> dict:
    return {"features": self.features, "clip_pooling": self.clip_pooling,
            "bn_reestimate": self.bn_reestimate, "valid_holdout": self.valid_holdout}

  def run(self, embedder, step: int) -> dict[str, float]:
    t0 = time.time()
    _, r = self.evaluate(embedder)
    # Test accuracy for the curves; valid accuracy for choosing a recipe (never on test).
    out = {f"{self.name}/accuracy": float(r["accuracy"]["mean"]),
           f"{self.name}/balanced_accuracy": float(r["balanced_accuracy"]["mean"]),
           f"{self.name}/valid_accuracy": float(r["valid_accuracy"]["mean"]),
           f"{self.name}/seconds": time.time() - t0}
    logging.info("step %d probe %s: accuracy %.4f balanced %.4f (%.1f s)", step, self.name,
                 out[f"{self.name}/accuracy"], out[f"{self.name}/balanced_accuracy"],
                 out[f"{self.name}/seconds"])
    return out
