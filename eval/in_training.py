"""The in-training probe: a quick linear probe of the current encoder every N steps.

Configured in ``config.evals`` (name -> ConfigDict), e.g.::

  c.evals.msn = ml_collections.ConfigDict(dict(task="suite:msn", every_steps=500,
                                               max_clips=600))

``run(state, step)`` embeds the task's clips with the state's encoder params and
BatchNorm statistics (non-overlapping slices, jitted, sharded over the ``data``
mesh), fits one linear probe (one seed, a small lr / weight-decay grid picked on
valid) and returns ``{name/accuracy, name/balanced_accuracy}``. The task's audio is
decoded once, on the first call, and kept in memory as int16 slices: later calls
only re-embed it.
"""

from __future__ import annotations

import time

from absl import logging

from eval import embeddings as emb_lib
from eval import probe
from ssl_audio import parallel
from ssl_audio import pretrained


class ProbeEvaluator:

  def __init__(self, name: str, ev_config, config, task):
    self.name = name
    self.task_spec = ev_config["task"]
    self.every_steps = int(ev_config.get("every_steps", 1000))
    if self.every_steps <= 0:
      raise ValueError(f"config.evals.{name}.every_steps: must be positive, got {self.every_steps}")
    self.max_clips = ev_config.get("max_clips", None) or None
    self.steps = int(ev_config.get("probe_steps", 500))
    self.batch_size = int(ev_config.get("batch_size", 256))
    self.frontend = task.frontend
    self.encoder = pretrained.encoder_from_config(config)
    self.mesh = parallel.make_mesh(config.get("num_devices", 0) or None)
    self._fn = pretrained.make_embed_fn(self.encoder, self.frontend, self.mesh)
    self._manifest = None
    self._decoded = None

  def _audio(self):
    if self._decoded is None:
      t0 = time.time()
      m = emb_lib.load_task(self.task_spec)
      rows = emb_lib.subset_rows(m, self.max_clips)
      self._decoded = emb_lib.decode_task(m, rows, self.frontend.sample_rate,
                                          self.frontend.slice_samples)
      self._manifest = m
      logging.info("probe %s: %d clips, %d slices decoded in %.1f s (%d skipped)", self.name,
                   len(self._decoded.rows), len(self._decoded.slices), time.time() - t0,
                   self._decoded.skipped)
    return self._manifest, self._decoded

  def run(self, state, step: int) -> dict[str, float]:
    t0 = time.time()
    m, d = self._audio()
    enc_vars = pretrained.encoder_variables(state.variables())
    embed = lambda x: pretrained.run_batched(self._fn, enc_vars, x, self.batch_size, self.mesh)
    e = emb_lib.embed_decoded(embed, d, m)
    r = probe.linear_probe(e, seeds=(0,), lrs=(1e-3, 1e-2), wds=(0.0, 1e-3, 1e-1),
                           steps=self.steps)
    out = {f"{self.name}/accuracy": float(r["accuracy"]["mean"]),
           f"{self.name}/balanced_accuracy": float(r["balanced_accuracy"]["mean"]),
           f"{self.name}/seconds": time.time() - t0}
    logging.info("step %d probe %s: accuracy %.4f balanced %.4f (%.1f s)", step, self.name,
                 out[f"{self.name}/accuracy"], out[f"{self.name}/balanced_accuracy"],
                 out[f"{self.name}/seconds"])
    return out
