"""Fixed log-mel input statistics of a pretraining pool (one mean, one scale).

``config.encoder.input_norm = "pool"`` makes the trainer measure the mean and
standard deviation of the log-mel values of random slices of the pretraining
pool once, at step 0, and write them into ``config.encoder.input_mean`` /
``input_std``. They travel in the checkpoint's config, so every consumer of the
encoder (eval, notebooks, HEAR, export) normalises exactly as training did:
the encoder itself applies ``(x - input_mean) / input_std`` to its input.
Raw log-mel sits near -6.5 with a spread of a few units; reconstruction losses
on it are dominated by level and spectral envelope, and the first conv layer
sees a large constant offset.
"""

from __future__ import annotations

import numpy as np
from absl import logging

from ssl_audio import audio as audio_lib
from ssl_audio import frontend as fe
from ssl_audio.manifest import Manifest


def random_slices(manifest: Manifest, frontend: fe.FrontendConfig, n_slices: int = 256,
                  seed: int = 0) -> np.ndarray:
  """[n, slice_samples] float32: one random slice of each of ``n_slices`` random files.

  Files that fail to decode or are shorter than a slice are skipped (at most
  4 * n_slices draws); raises RuntimeError when none is usable. Also the
  calibration set of static int8 export (ssl_audio.export).
  """
  rng = np.random.default_rng(seed)
  s = frontend.slice_samples
  slices, tries, skipped = [], 0, 0
  while len(slices) < n_slices and tries < 4 * n_slices:
    tries += 1
    i = int(rng.integers(len(manifest)))
    start, end = manifest.segment(i)
    try:
      x = audio_lib.load_audio(manifest.path(i), frontend.sample_rate, start=start, end=end,
                               min_samples=s)
    except audio_lib.BadAudio:
      skipped += 1
      continue
    t = int(rng.integers(0, len(x) - s + 1))
    slices.append(x[t:t + s])
  if not slices:
    raise RuntimeError(f"{manifest.name}: no file could be read (undecodable or shorter than a slice)")
  if skipped:
    logging.info("%s: %d unreadable or too short files skipped", manifest.name, skipped)
  return np.stack(slices).astype(np.float32)


def log_mel_stats(manifest: Manifest, frontend: fe.FrontendConfig, n_slices: int = 256,
                  seed: int = 0) -> tuple[float, float]:
  """(mean, std) of log-mel over ``n_slices`` random slices of random files."""
  import jax
  slices = random_slices(manifest, frontend, n_slices, seed)
  mel = np.asarray(jax.jit(lambda a: fe.log_mel(a, frontend))(slices), np.float64)
  mean, std = float(mel.mean()), float(mel.std())
  logging.info("log-mel statistics of %s: mean %.3f std %.3f (%d slices)",
               manifest.name, mean, std, len(slices))
  return mean, max(std, 1e-3)
