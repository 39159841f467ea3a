"""Audio2Vec: CBoW (rebuild a slice from its context) and skip-gram (the reverse).

Paper [A]: "Audio2Vec-CBoW: rebuild a spectrogram slice from past and future
slices"; "Audio2Vec-SG: rebuild the surrounding slices from the current slice".
Choices the paper leaves open (paper.md §3, §4, §9) are config keys:

* ``task.context`` P (2): slices on each side of the middle one, so one example
  is a contiguous block of 2P + 1 slices of 96 frames.
* ``task.gap_frames`` G (0): frames skipped between consecutive slices. Slice k
  of the block starts at frame k * (96 + G) of the block (in samples: times the
  hop), so with G = 0 the slices' frames tile the block without overlap.
* ``task.window_seconds`` (10): the window of the clip the pipeline loads (at
  least one block: 4.815 s for P = 2, G = 0); the block sits at a uniformly random
  offset inside it. Clips shorter than one block are skipped.
* CBoW ``task.aggregation``: "mean" (word2vec-CBoW style element-wise mean of the
  2P context embeddings, our default) or "concat" (the 2P embeddings in order).
* SG: ONE decoder with ``outputs = 2P`` channels decodes the middle embedding to
  all 2P context slices at once (channel k = context position k, past to future);
  no per-position conditioning.
* Both decode with ``SliceDecoder`` (base.py; Dense -> mirrored upsampling
  blocks) and train with the MSE against the log-mel slices, which the model
  computes on the device from the raw windows (``frontend.log_mel``) and passes
  through ``stop_gradient``. ``baseline_loss`` is the MSE of the batch-mean slice
  (per context position for SG).
* ``task.target_norm`` ("none"; skip-gram's config: "slice"): "slice" or "bin"
  rebuild per-slice normalised log-mel instead (``base.normalised_target``), so
  level and spectral envelope no longer dominate the MSE.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import frontend as fe
from ssl_audio import tasks
from ssl_audio.tasks.base import (SliceDecoder, Task, check_target_norm, mse_with_baseline,
                                  normalised_target, target_norm)


def _check_block_config(config) -> None:
  """Shared validation of the block geometry (context, gap, window) and the target."""
  check_target_norm(config)
  t = config.task
  if not isinstance(t.context, int) or isinstance(t.context, bool) or t.context < 1:
    raise ValueError(f"config.task.context: must be an integer >= 1, got {t.context!r}")
  if not isinstance(t.gap_frames, int) or isinstance(t.gap_frames, bool) or t.gap_frames < 0:
    raise ValueError(f"config.task.gap_frames: must be an integer >= 0, got {t.gap_frames!r}")
  if not t.window_seconds > 0:
    raise ValueError(f"config.task.window_seconds: must be > 0, got {t.window_seconds}")


def _stride_samples(f: fe.FrontendConfig, gap_frames: int) -> int:
  return (f.slice_frames + gap_frames) * f.hop_length


def _block_samples(f: fe.FrontendConfig, context: int, gap_frames: int) -> int:
  return 2 * context * _stride_samples(f, gap_frames) + f.slice_samples


class Audio2VecModel(nn.Module):
  """Raw windows [B, 2P+1, samples] -> {"pred", "target"} log-mel slices [B, 96, 64, k]."""
  task: "_Audio2VecBase"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    t = self.task
    p = t.config.task.context
    audio = batch["audio"]
    b, n, s = audio.shape
    mel = fe.log_mel(audio.reshape(b * n, s), t.frontend).reshape(b, n, *_slice_shape(t))
    mel_mid = mel[:, p]                                              # [B, F, M]
    mel_ctx = jnp.concatenate([mel[:, :p], mel[:, p + 1:]], axis=1)  # [B, 2P, F, M]
    encoder = t.make_encoder()
    dec_cfg = t.config.encoder
    if t.mode == "cbow":
      emb = encoder(mel_ctx.reshape(b * 2 * p, *mel_ctx.shape[2:]), train=train).reshape(b, 2 * p, -1)
      z = emb.mean(axis=1) if t.config.task.aggregation == "mean" else emb.reshape(b, -1)
      outputs, target = 1, mel_mid[..., None]                        # [B, F, M, 1]
    else:
      z = encoder(mel_mid, train=train)
      outputs, target = 2 * p, jnp.moveaxis(mel_ctx, 1, -1)          # [B, F, M, 2P]
    target, out_bias = normalised_target(encoder, target, t.config.task.decoder_bias_init,
                                         target_norm(t.config))
    pred = SliceDecoder(frames=t.frontend.slice_frames, mels=t.frontend.n_mels,
                        width=dec_cfg.width, outputs=outputs, out_bias=out_bias, name="decoder")(z)
    return {"pred": pred, "target": jax.lax.stop_gradient(target)}


def _slice_shape(task: Task) -> tuple[int, int]:
  return task.frontend.slice_frames, task.frontend.n_mels


class _Audio2VecBase(Task):
  mode = ""

  @classmethod
  def check_config(cls, config):
    _check_block_config(config)

  @property
  def clip_samples(self) -> int:
    """The window loaded per example; never shorter than one block."""
    return max(int(round(self.config.task.window_seconds * self.frontend.sample_rate)),
               self.block_samples)

  @property
  def stride_samples(self) -> int:
    return _stride_samples(self.frontend, self.config.task.gap_frames)

  @property
  def block_samples(self) -> int:
    return _block_samples(self.frontend, self.config.task.context, self.config.task.gap_frames)

  @property
  def min_samples(self) -> int:
    return self.block_samples

  def sample(self, clip, rng):
    """One contiguous block of 2P + 1 slices at a random offset: audio [2P+1, samples]."""
    s, block = self.frontend.slice_samples, self.block_samples
    if len(clip) < block:
      raise ValueError(f"clip of {len(clip)} samples is shorter than one block ({block})")
    start = int(rng.integers(0, len(clip) - block + 1))
    n = 2 * self.config.task.context + 1
    audio = np.stack([clip[start + k * self.stride_samples:start + k * self.stride_samples + s]
                      for k in range(n)])
    return {"audio": audio.astype(np.float32)}

  def model(self, num_classes=None):
    return Audio2VecModel(self)

  def loss(self, outputs, batch):
    return mse_with_baseline(outputs["pred"], outputs["target"])


@tasks.register
class Audio2VecCBoW(_Audio2VecBase):
  name = "audio2vec_cbow"
  mode = "cbow"

  @classmethod
  def check_config(cls, config):
    _check_block_config(config)
    agg = config.task.aggregation
    if agg not in ("mean", "concat"):
      raise ValueError(f"config.task.aggregation: {agg!r} is not 'mean' or 'concat'")


@tasks.register
class Audio2VecSkipGram(_Audio2VecBase):
  name = "audio2vec_skipgram"
  mode = "skipgram"
