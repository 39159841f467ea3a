"""The HEAR 2021 common API over a pretraining workdir.

    from ssl_audio import hear
    model = hear.load_model("runs/tg")                  # or runs/tg/checkpoints/3000
    scene = hear.get_scene_embeddings(audio, model)     # audio [n, samples] at 16 kHz -> [n, D]
    emb, ts = hear.get_timestamp_embeddings(audio, model)  # [n, T, D], [n, T] in ms

* Scene embeddings: the mean of the embeddings of the non-overlapping 96-frame
  slices of each clip (a clip shorter than a slice is zero-padded to one).
* Timestamp embeddings: one 96-frame (975 ms) slice centred on every timestamp
  t_k = k * hop, k = 0 .. floor(duration / hop) (hop 50 ms by default, a multiple
  of the 10 ms frame hop), the edges zero-padded by half a slice. The log-mel of
  the padded clip is computed once and the slices are windows of its frames,
  which is exactly the log-mel of each padded slice (the front-end does not centre).

Inputs may be numpy or JAX arrays (float in [-1, 1]); outputs are float32 numpy
arrays. The HEAR kit itself type-checks for torch/TF modules (stack.md §9):
``ssl_audio.hear_torch`` wraps this module as a torch module for the real kit
(tools/hear_validate.sh); the validator's rules are also checked here in
tests/test_pretrained_hear.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import frontend as fe
from ssl_audio.pretrained import Pretrained, load_pretrained, split_slices


class HearModel:
  """A loaded encoder with the attributes HEAR asks for."""

  def __init__(self, pre: Pretrained, hop_ms: float = 50.0, batch_clips: int = 16):
    self.pre = pre
    frame_ms = 1000.0 * pre.frontend.hop_length / pre.frontend.sample_rate
    hop_frames = hop_ms / frame_ms
    if abs(hop_frames - round(hop_frames)) > 1e-9 or round(hop_frames) < 1:
      raise ValueError(f"hop_ms={hop_ms} must be a multiple of the front-end hop ({frame_ms} ms)")
    self.hop_frames = int(round(hop_frames))
    self.hop_ms = float(hop_ms)
    self.batch_clips = batch_clips
    self.sample_rate = int(pre.sample_rate)
    self.scene_embedding_size = int(pre.embedding_dim)
    self.timestamp_embedding_size = int(pre.embedding_dim)

  @functools.cached_property
  def _mel(self):
    return jax.jit(lambda a: fe.log_mel(a, self.pre.frontend))

  def __repr__(self):
    i = self.pre.info
    return (f"HearModel({i['task']}, step {i['step']}, width {i['width']}, "
            f"D={self.scene_embedding_size}, hop {self.hop_ms} ms)")


def load_model(model_file_path: str = "", hop_ms: float = 50.0) -> HearModel:
  """A pretraining workdir, or one of its ``checkpoints/<step>`` folders."""
  if not model_file_path:
    raise ValueError("load_model needs a workdir or a checkpoints/<step> folder")
  return HearModel(load_pretrained(model_file_path), hop_ms=hop_ms)


def _audio(audio, model: HearModel) -> np.ndarray:
  x = np.asarray(audio, dtype=np.float32)
  if x.ndim == 1:
    x = x[None]
  if x.ndim != 2:
    raise ValueError(f"audio must be [n_sounds, n_samples], got shape {x.shape}")
  return x


def get_scene_embeddings(audio, model: HearModel) -> np.ndarray:
  """[n, samples] -> [n, D] float32: mean of non-overlapping slice embeddings."""
  x = _audio(audio, model)
  n, length = x.shape
  s = model.pre.slice_samples
  k = max(1, length // s)   # slices per clip, as split_slices cuts them
  emb = model.pre.embed_batch(split_slices(x, s)).reshape(n, k, -1)
  return emb.mean(axis=1).astype(np.float32)


def timestamps_ms(length: int, model: HearModel) -> np.ndarray:
  """Slice centres in ms: 0, hop, 2 hop, ... up to the clip's duration."""
  hop_samples = model.hop_frames * model.pre.frontend.hop_length
  t = np.arange(length // hop_samples + 1)
  return (t * model.hop_ms).astype(np.float32)


def get_timestamp_embeddings(audio, model: HearModel) -> tuple[np.ndarray, np.ndarray]:
  """[n, samples] -> (embeddings [n, T, D] float32, timestamps [n, T] ms float32)."""
  x = _audio(audio, model)
  n, length = x.shape
  f = model.pre.frontend
  ts = timestamps_ms(length, model)
  n_t = len(ts)
  half = f.slice_samples // 2
  # Padded so that slice k covers [k*hop - half, k*hop - half + slice_samples).
  hop_samples = model.hop_frames * f.hop_length
  total = (n_t - 1) * hop_samples + f.slice_samples
  padded = np.zeros((n, total), np.float32)
  keep = min(length, total - half)
  padded[:, half:half + keep] = x[:, :keep]
  starts = np.arange(n_t) * model.hop_frames
  window = starts[:, None] + np.arange(f.slice_frames)[None, :]       # [T, frames]
  out = np.zeros((n, n_t, model.timestamp_embedding_size), np.float32)
  # Clips per pass: at most batch_clips, and about 256 MB of gathered log-mel windows.
  per_clip = n_t * f.slice_frames * f.n_mels * 4
  step = max(1, min(model.batch_clips, (256 << 20) // per_clip))
  for i in range(0, n, step):
    mel = np.asarray(model._mel(jnp.asarray(padded[i:i + step])))      # [b, F, mels]
    windows = mel[:, window]                                          # [b, T, frames, mels]
    b = windows.shape[0]
    e = model.pre.embed_mel(windows.reshape(b * n_t, f.slice_frames, f.n_mels))
    out[i:i + b] = e.reshape(b, n_t, -1)
  return out, np.broadcast_to(ts, (n, n_t)).astype(np.float32).copy()
