"""The small conv encoder of the paper family, and helpers to count its cost.

Each block: Conv(3x1, time) -> ReLU -> Conv(1x3, frequency) -> [BatchNorm] -> ReLU
-> MaxPool 2x2. Channels 8, 16, ..., 256 times ``width``; global max-pool over time
and frequency; Dense to the embedding (paper.md §3: the block layout and d = 128 are
recollections, not confirmed). BatchNorm folds into the conv at export time, so it
stays mobile-friendly; its statistics are averaged over the ``data`` mesh axis so
the step gives the same result on 1 or N devices.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import augment as augment_lib

BASE_CHANNELS = (8, 16, 32, 64, 128, 256)
BN_MOMENTUM = 0.99   # running average = momentum * old + (1 - momentum) * batch statistic


class ConvBlock(nn.Module):
  channels: int
  norm: str = "batch"            # "batch" or "none"
  axis_name: str | None = None   # mesh axis to average BatchNorm statistics over

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(self.channels, (3, 1), padding="SAME", name="conv_time")(x)
    x = nn.relu(x)
    x = nn.Conv(self.channels, (1, 3), padding="SAME", use_bias=self.norm == "none",
                name="conv_freq")(x)
    if self.norm == "batch":
      x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                       axis_name=self.axis_name if train else None, name="bn")(x)
    x = nn.relu(x)
    if train:
      return max_pool_2x2(x)
    # Keyword arguments: jax2onnx patches max_pool with a keyword-only signature.
    return nn.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """nn.max_pool(x, (2, 2), (2, 2), "SAME") for training, with a cheaper gradient on XLA:CPU.

  The same values as the reduce_window pool, and the same gradient: all of it goes
  to the first maximum of each window in row-major order, as XLA's select_and_scatter
  does; but the backward is a few elementwise selects and an interleave instead of
  select_and_scatter, which is slow on XLA:CPU (BENCHMARKS.md). The winner's index
  is computed once in the forward pass and saved (int8), so the backward never
  compares recomputed floats (an equality mask ``x == max(x)`` loses gradient under
  jit when XLA recomputes ``x`` in another fusion). Inference keeps nn.max_pool (one
  MAX_POOL_2D op in exported models).
  """
  b, h, w, c = x.shape
  ph, pw = h % 2, w % 2
  if ph or pw:   # SAME for window = stride = 2: pad the end of odd axes
    x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=-jnp.inf)
  return _pool2x2(x)


def _pool2x2_fwd(x):
  q = (x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2])
  top, bot = jnp.maximum(q[0], q[1]), jnp.maximum(q[2], q[3])
  i_top = jnp.where(q[0] >= q[1], 0, 1).astype(jnp.int8)
  i_bot = jnp.where(q[2] >= q[3], 2, 3).astype(jnp.int8)
  idx = jnp.where(top >= bot, i_top, i_bot)
  return jnp.maximum(top, bot), idx


def _pool2x2_bwd(idx, g):
  b, h2, w2, c = g.shape
  zero = jnp.zeros((), g.dtype)
  ga, gb, gc, gd = (jnp.where(idx == k, g, zero) for k in range(4))
  top = jnp.stack([ga, gb], axis=3).reshape(b, h2, 2 * w2, c)   # interleave along frequency
  bot = jnp.stack([gc, gd], axis=3).reshape(b, h2, 2 * w2, c)
  return (jnp.stack([top, bot], axis=2).reshape(b, 2 * h2, 2 * w2, c),)  # and along time


@jax.custom_vjp
def _pool2x2(x):
  return _pool2x2_fwd(x)[0]


_pool2x2.defvjp(_pool2x2_fwd, _pool2x2_bwd)


class Encoder(nn.Module):
  """Log-mel slices [B, frames, mels] (or [..., 1]) -> embeddings [B, embedding_dim]."""
  width: float = 1.0
  embedding_dim: int = 128
  channels: Sequence[int] = BASE_CHANNELS
  norm: str = "batch"
  axis_name: str | None = None
  # Fixed input normalisation (ssl_audio.normalization): (x - input_mean) / input_std.
  input_mean: float = 0.0
  input_std: float = 1.0
  # Training-only log-mel augmentation (ssl_audio.augment); no parameters of its own.
  augment: Any = None                       # an AugmentConfig, or None
  augment_mel_hz: tuple[float, ...] = ()    # centre frequency of each mel bin
  augment_log_floor: float = 1e-5

  def block_channels(self) -> list[int]:
    return [max(1, int(round(c * self.width))) for c in self.channels]

  @nn.compact
  def __call__(self, x, train: bool = False, return_blocks: bool = False):
    if train and self.augment is not None and self.augment.enabled and self.has_rng("augment"):
      x = x[..., 0] if x.ndim == 4 else x
      first = jax.lax.axis_index(self.axis_name) * x.shape[0] if self.axis_name else 0
      x = augment_lib.apply(x, self.augment, self.make_rng("augment"), jnp.asarray(first),
                            np.asarray(self.augment_mel_hz, np.float32), self.augment_log_floor)
    if x.ndim == 3:
      x = x[..., None]
    if self.input_mean != 0.0 or self.input_std != 1.0:
      x = (x - self.input_mean) / self.input_std
    feats = []
    for i, c in enumerate(self.block_channels()):
      x = ConvBlock(c, self.norm, self.axis_name, name=f"block{i}")(x, train)
      feats.append(x)
    x = jnp.max(x, axis=(1, 2))                       # global max-pool
    x = nn.Dense(self.embedding_dim, name="embedding")(x)
    return (x, feats) if return_blocks else x


def from_config(e, quantize: bool = True, **kwargs) -> Encoder:
  """The encoder a config's ``encoder`` section (ConfigDict or checkpoint JSON) describes.

  ``kwargs``: module fields that are not hyper-parameters (``axis_name``, ``name``).
  With ``encoder.quant`` set (ssl_audio.quant) a standalone encoder comes wrapped in
  fake quantization; ``quantize=False`` for a submodule (a task's model is wrapped as
  a whole by ``state.build_model``: qwix wraps top-level modules).
  """
  get = lambda k, default: e[k] if k in e else default   # older checkpoints lack the later keys
  enc = Encoder(width=float(e["width"]), embedding_dim=int(e["embedding_dim"]),
                norm=get("norm", "batch"), input_mean=float(get("input_mean", 0.0)),
                input_std=float(get("input_std", 1.0)), **kwargs)
  if not quantize:
    return enc
  from ssl_audio import quant   # qwix only when encoder.quant is set
  return quant.fake_quant(enc, get("quant", "none"))


def count_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def forward_flops(encoder: Encoder, variables, slice_shape: tuple[int, int]) -> float:
  """Forward FLOPs per slice by XLA's cost analysis (batch 1, inference mode)."""
  x = jax.ShapeDtypeStruct((1, *slice_shape, 1), jnp.float32)
  return xla_flops(lambda v, x: encoder.apply(v, x, train=False), variables, x)


def xla_flops(fn, *args) -> float:
  """FLOPs of ``jit(fn)(*args)`` by XLA's cost analysis (args may be shape structs)."""
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returned one dict per device
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def describe(encoder: Encoder, variables, slice_shape: tuple[int, int]) -> dict:
  """Parameters and FLOPs of the encoder alone, as stored in checkpoint metadata."""
  return {"encoder_params": count_params(variables["params"]),
          "encoder_flops_per_slice": forward_flops(encoder, variables, slice_shape),
          "width": encoder.width, "embedding_dim": encoder.embedding_dim,
          "block_channels": encoder.block_channels(), "norm": encoder.norm}
