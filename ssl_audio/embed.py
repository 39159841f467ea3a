"""The one slice-embedding function, and ``Embedder``: an encoder with its weights.

Every consumer of embeddings goes through here: the in-training evaluators (on the
train state's encoder), the evaluation CLI and ``load_pretrained`` (on a
checkpoint's), HEAR, and export. ``features`` picks what a slice is mapped to:

* ``embedding``: the encoder's output, the 128-d Dense the pretext head shapes (the paper's).
* ``pooled``: the global max-pool just before that Dense (256 x width units).
* ``blocks``: mean and max over time and frequency of every block's output,
  concatenated (Pons & Serra's multi-layer pooling, a strong random-CNN baseline).

The functions are jitted and data-parallel (shard_map over the ``data`` mesh); a
batch is padded to a fixed size so shapes never recompile.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ssl_audio import audio as audio_lib
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import parallel
from ssl_audio.parallel import DATA_AXIS

FEATURES = ("embedding", "pooled", "blocks")


def check_features(features: str) -> str:
  if features not in FEATURES:
    raise ValueError(f"features: {features!r} is not one of {FEATURES}")
  return features


def encoder_features(encoder: encoder_lib.Encoder, variables, mel: jax.Array,
                     features: str = "embedding", train: bool = False, mutable=False):
  """Log-mel slices [B, frames, mels] -> features [B, F] (see the module doc).

  ``train``/``mutable`` let BatchNorm re-estimation run the same forward pass in
  train mode; then the result is (features, mutated variables).
  """
  kw = dict(train=train, mutable=mutable) if mutable else dict(train=train)
  if features == "embedding":
    return encoder.apply(variables, mel, **kw)
  out = encoder.apply(variables, mel, return_blocks=True, **kw)
  (_, feats), mutated = out if mutable else (out, None)
  if features == "pooled":
    z = jnp.max(feats[-1], axis=(1, 2))
  else:
    z = jnp.concatenate([r for f in feats for r in (jnp.mean(f, axis=(1, 2)),
                                                    jnp.max(f, axis=(1, 2)))], axis=-1)
  return (z, mutated) if mutable else z


def feature_dim(encoder: encoder_lib.Encoder, features: str) -> int:
  ch = encoder.block_channels()
  return {"embedding": encoder.embedding_dim, "pooled": ch[-1], "blocks": 2 * sum(ch)}[features]


_FN_CACHE: dict = {}


def _cached(kind: str, encoder: encoder_lib.Encoder, frontend, features: str, mesh,
            build: Callable) -> Callable:
  """One jitted function per (encoder config, front-end, features, mesh): models of one
  architecture (a checkpoint and its Untrained baseline, successive in-training
  probes) share compilations."""
  # type(encoder): a qwix-quantized encoder (ssl_audio.quant) is another class
  key = (kind, type(encoder), encoder.width, encoder.embedding_dim, tuple(encoder.channels), encoder.norm,
         encoder.input_mean, encoder.input_std, frontend, features,
         tuple(d.id for d in mesh.devices.flat))
  if key not in _FN_CACHE:
    _FN_CACHE[key] = build()
  return _FN_CACHE[key]


def make_embed_fn(encoder: encoder_lib.Encoder, frontend: fe.FrontendConfig, mesh,
                  features: str = "embedding") -> Callable[[dict, jax.Array], jax.Array]:
  """jit(shard_map): (encoder variables, audio [B, slice_samples]) -> [B, F].

  B must be a multiple of the mesh size; audio may be float or int16.
  """
  def build():
    def per_device(variables, audio):
      return encoder_features(encoder, variables, fe.log_mel(audio, frontend), features)
    return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS))
  return _cached("audio", encoder, frontend, features, mesh, build)


def make_embed_mel_fn(encoder: encoder_lib.Encoder, mesh, features: str = "embedding") -> Callable:
  """Same as ``make_embed_fn`` on log-mel slices [B, frames, mels]."""
  def build():
    def per_device(variables, mel):
      return encoder_features(encoder, variables, mel, features)
    return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS))
  return _cached("mel", encoder, None, features, mesh, build)


def run_batched(fn: Callable, variables: Any, x: np.ndarray, batch_size: int, mesh) -> np.ndarray:
  """Applies ``fn(variables, batch)`` over x [N, ...] in fixed-size padded batches.

  Batches are ``batch_size`` rounded up to a multiple of the device count; a smaller
  input uses the next power of two instead, so at most a handful of shapes compile.
  """
  n = len(x)
  n_dev = mesh.devices.size
  if n == 0:
    return np.zeros((0,), np.float32)
  bs = min(batch_size, max(16, 1 << int(np.ceil(np.log2(max(n, 1))))))
  bs = -(-bs // n_dev) * n_dev
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  outs = []
  for i in range(0, n, bs):
    chunk = x[i:i + bs]
    m = len(chunk)
    if m < bs:
      chunk = np.concatenate([chunk, np.zeros((bs - m, *chunk.shape[1:]), chunk.dtype)])
    out = fn(variables, jax.device_put(chunk, sharding))
    outs.append(np.asarray(out)[:m])
  return np.concatenate(outs)


def split_slices(audio: np.ndarray, slice_samples: int) -> np.ndarray:
  """Non-overlapping slices [n, slice_samples] of a 1-D clip (or of each row of
  [n_clips, samples]); the tail shorter than a slice is dropped, and a clip shorter
  than one slice is zero-padded to one."""
  audio = np.asarray(audio)
  n = audio.shape[-1] // slice_samples
  if n == 0:
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, slice_samples - audio.shape[-1])]
    return np.pad(audio, pad).reshape(-1, slice_samples)
  return audio[..., :n * slice_samples].reshape(-1, slice_samples)


@dataclasses.dataclass
class Embedder:
  """An encoder, its variables and front-end: slices or clips in, features out."""
  encoder: encoder_lib.Encoder
  variables: dict                 # {"params", "batch_stats"?} of the encoder alone
  frontend: fe.FrontendConfig
  identity: str = ""              # names the weights for caches (e.g. "step1000")
  batch_size: int = 256
  mesh: Any = None
  features: str = "embedding"

  def __post_init__(self):
    check_features(self.features)
    if self.mesh is None:
      self.mesh = parallel.make_mesh()
    self.variables = jax.device_put(self.variables, parallel.replicated(self.mesh))

  def with_features(self, features: str) -> "Embedder":
    return dataclasses.replace(self, features=features)

  def with_variables(self, variables: dict, identity: str) -> "Embedder":
    return dataclasses.replace(self, variables=variables, identity=identity)

  @property
  def embedding_dim(self) -> int:
    return feature_dim(self.encoder, self.features)

  @property
  def sample_rate(self) -> int:
    return int(self.frontend.sample_rate)

  @property
  def slice_samples(self) -> int:
    return int(self.frontend.slice_samples)

  def embed_batch(self, slices_audio) -> np.ndarray:
    """Audio slices [B, slice_samples] (float in [-1, 1] or int16) -> features [B, F]."""
    x = np.asarray(slices_audio)
    if x.ndim != 2 or x.shape[1] != self.slice_samples:
      raise ValueError(f"expected [B, {self.slice_samples}] slices, got {x.shape}")
    if x.dtype != np.int16:
      x = x.astype(np.float32, copy=False)
    if len(x) == 0:
      return np.zeros((0, self.embedding_dim), np.float32)
    fn = make_embed_fn(self.encoder, self.frontend, self.mesh, self.features)
    return run_batched(fn, self.variables, x, self.batch_size, self.mesh)

  def embed_mel(self, mel) -> np.ndarray:
    """Log-mel slices [B, frames, mels] -> features [B, F]."""
    mel = np.asarray(mel, np.float32)
    if len(mel) == 0:
      return np.zeros((0, self.embedding_dim), np.float32)
    fn = make_embed_mel_fn(self.encoder, self.mesh, self.features)
    return run_batched(fn, self.variables, mel, self.batch_size, self.mesh)

  def prepare(self, waveform, sample_rate: int) -> np.ndarray:
    """Mono float32 at the model's rate (soxr)."""
    x = audio_lib.to_mono(np.asarray(waveform, np.float32))
    if sample_rate != self.sample_rate:
      import soxr
      x = soxr.resample(x, sample_rate, self.sample_rate).astype(np.float32, copy=False)
    return x

  def slices(self, waveform, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(non-overlapping slices [n, slice_samples], slice centres [n] in seconds)."""
    s = split_slices(self.prepare(waveform, sample_rate), self.slice_samples)
    times = (np.arange(len(s)) + 0.5) * self.slice_samples / self.sample_rate
    return s, times

  def embed(self, waveform, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """One clip -> (features [n_slices, F], slice centres [n_slices] in seconds).

    Non-overlapping 96-frame slices (0.975 s at 16 kHz); the tail shorter than a
    slice is dropped; a clip shorter than one slice is zero-padded to one.
    """
    s, times = self.slices(waveform, sample_rate)
    return self.embed_batch(s), times


def reestimate_batch_stats(embedder: Embedder, slices: np.ndarray, batch_size: int = 256,
                           max_slices: int = 4096, seed: int = 0) -> Embedder:
  """The embedder with BatchNorm statistics re-estimated on ``slices`` (audio [N, samples]).

  Precise-BN style: every batch runs once in train mode (each layer normalised by its
  batch's statistics, as in training) and each BatchNorm's batch mean and variance
  are averaged over batches (weighted by size). With the running statistics zeroed
  before each call, the updated running value is exactly (1 - momentum) times the
  batch statistic. Used to adapt a model pretrained on full-band audio to a
  band-limited benchmark; applies to every model alike (Untrained too).
  """
  if "batch_stats" not in embedder.variables:
    return embedder   # norm="none": nothing to estimate
  x = np.asarray(slices)
  if len(x) > max_slices:
    x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_slices, replace=False))]
  enc, fcfg = embedder.encoder, embedder.frontend
  params = jax.device_get(embedder.variables["params"])
  zeros = jax.tree.map(np.zeros_like, jax.device_get(embedder.variables["batch_stats"]))
  scale = 1.0 / (1.0 - encoder_lib.BN_MOMENTUM)

  @jax.jit
  def batch_stats(audio):
    _, mutated = enc.apply({"params": params, "batch_stats": zeros}, fe.log_mel(audio, fcfg),
                           train=True, mutable=["batch_stats"])
    return jax.tree.map(lambda v: v * scale, mutated["batch_stats"])

  total, n = None, 0
  for i in range(0, len(x), batch_size):
    chunk = x[i:i + batch_size]
    if len(chunk) < 2 and n:   # a 1-slice tail has no variance to add
      break
    st = jax.device_get(batch_stats(jnp.asarray(chunk)))
    w = len(chunk)
    total = jax.tree.map(lambda a: a * w, st) if total is None else \
        jax.tree.map(lambda t, a: t + a * w, total, st)
    n += w
  stats = jax.tree.map(lambda t: (t / n).astype(np.float32), total)
  return embedder.with_variables({"params": params, "batch_stats": stats},
                                 identity=f"{embedder.identity}-bn{len(x)}s{seed}")
