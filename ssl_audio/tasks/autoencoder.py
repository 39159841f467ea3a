"""AutoEncoder baseline: rebuild the same log-mel slice through the embedding.

paper.md §4 ("Other baselines", [U, med]): encoder + decoder rebuilding the same
slice, MSE. Choices the paper leaves open, all config keys or fixed here:

* ``task.window_seconds`` (10): the window of the clip the pipeline loads; the
  slice sits at a uniformly random offset inside it.
* decoder: ``SliceDecoder`` (shared with Audio2Vec), width = encoder width.
* loss: MSE against the slice's log-mel, computed on the device and passed
  through ``stop_gradient``; ``baseline_loss`` is the MSE of the batch-mean slice.
  There is no bottleneck other than the 128-d embedding (no noise, no sparsity).
* ``task.target_norm`` ("none" | "slice" | "bin"): as for Audio2Vec.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from ssl_audio import frontend as fe
from ssl_audio import tasks
from ssl_audio.tasks.base import (SliceDecoder, Task, check_target_norm, mse_with_baseline,
                                  normalised_target, random_starts, target_norm)


class AutoEncoderModel(nn.Module):
  task: "AutoEncoder"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    t = self.task
    audio = batch["audio"][:, 0]                                     # [B, samples]
    mel = fe.log_mel(audio, t.frontend)                              # [B, F, M]
    encoder = t.make_encoder()
    z = encoder(mel, train=train)
    target, out_bias = normalised_target(encoder, mel[..., None], t.config.task.decoder_bias_init,
                                         target_norm(t.config))
    pred = SliceDecoder(frames=t.frontend.slice_frames, mels=t.frontend.n_mels,
                        width=t.config.encoder.width, outputs=1, out_bias=out_bias,
                        name="decoder")(z)
    return {"pred": pred, "target": jax.lax.stop_gradient(target)}


@tasks.register
class AutoEncoder(Task):
  name = "autoencoder"

  @classmethod
  def check_config(cls, config):
    check_target_norm(config)
    f = fe.FrontendConfig.from_dict(config.frontend)
    if not config.task.window_seconds * f.sample_rate >= f.slice_samples:
      raise ValueError(f"config.task.window_seconds: {config.task.window_seconds} is shorter than "
                       f"one slice ({f.slice_samples / f.sample_rate:.3f} s)")

  @property
  def min_samples(self) -> int:
    return self.frontend.slice_samples

  def sample(self, clip, rng):
    s = self.frontend.slice_samples
    if len(clip) < s:
      raise ValueError(f"clip of {len(clip)} samples is shorter than one slice ({s})")
    start = int(random_starts(rng, len(clip), s, 1)[0])
    return {"audio": clip[None, start:start + s].astype(np.float32)}

  def model(self, num_classes=None):
    return AutoEncoderModel(self)

  def loss(self, outputs, batch):
    return mse_with_baseline(outputs["pred"], outputs["target"])
