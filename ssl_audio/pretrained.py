"""A trained encoder out of a pretraining workdir, for notebooks, eval and HEAR.

    from ssl_audio import load_pretrained
    pre = load_pretrained("runs/tg")              # latest checkpoint step
    emb, times = pre.embed(waveform, sample_rate)  # [n_slices, D], slice centres in s
    pre.info                                       # task, width, params, FLOPs, step, ...

Everything is rebuilt from the checkpoint's ``meta`` (config, front-end, classes),
never from today's defaults, so a checkpoint keeps loading after the defaults move.
The whole train state is restored against an abstract tree built from that config
(``train.build_task`` + ``init_variables`` + ``make_optimizer``), which also checks
that the checkpoint matches the architecture; only the encoder's params and
BatchNorm statistics are kept. A ``--config.num_train_steps=0`` run (the Untrained
baseline) loads the same way; ``random_init`` builds it without a run.

Embedding runs jitted and data-parallel over every local device (the batch is
split along the ``data`` mesh axis, padded to a fixed size so shapes never
recompile).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ssl_audio import checkpoint as ckpt
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import parallel
from ssl_audio.parallel import DATA_AXIS


def encoder_from_config(config) -> encoder_lib.Encoder:
  """The encoder module described by a (checkpoint) config; eval mode needs no axis."""
  e = config["encoder"]
  return encoder_lib.Encoder(width=float(e["width"]), embedding_dim=int(e["embedding_dim"]),
                             norm=e.get("norm", "batch"))


def encoder_variables(variables: dict) -> dict:
  """{"params": ..., "batch_stats": ...} of the encoder out of a task model's variables."""
  return {k: v["encoder"] for k, v in variables.items() if hasattr(v, "keys") and "encoder" in v}


_FN_CACHE: dict = {}


def _cached(kind: str, encoder: encoder_lib.Encoder, frontend, mesh, build: Callable) -> Callable:
  """One jitted function per (encoder config, front-end, mesh): models of the same
  architecture (a checkpoint and its Untrained baseline, successive in-training
  probes) share compilations."""
  key = (kind, encoder.width, encoder.embedding_dim, tuple(encoder.channels), encoder.norm,
         frontend, tuple(d.id for d in mesh.devices.flat))
  if key not in _FN_CACHE:
    _FN_CACHE[key] = build()
  return _FN_CACHE[key]


def make_embed_fn(encoder: encoder_lib.Encoder, frontend: fe.FrontendConfig, mesh
                  ) -> Callable[[dict, jax.Array], jax.Array]:
  """jit(shard_map): (encoder variables, audio [B, slice_samples]) -> [B, D].

  B must be a multiple of the mesh size; audio may be float or int16.
  """
  def build():
    def per_device(variables, audio):
      return encoder.apply(variables, fe.log_mel(audio, frontend), train=False)
    return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS))
  return _cached("audio", encoder, frontend, mesh, build)


def make_embed_mel_fn(encoder: encoder_lib.Encoder, mesh) -> Callable:
  """Same as ``make_embed_fn`` on log-mel slices [B, frames, mels]."""
  def build():
    def per_device(variables, mel):
      return encoder.apply(variables, mel, train=False)
    return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS))
  return _cached("mel", encoder, None, mesh, build)


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
  """Non-overlapping slices [n, slice_samples] of a 1-D clip; the tail shorter than a
  slice is dropped, and a clip shorter than one slice is zero-padded to one."""
  audio = np.asarray(audio)
  n = len(audio) // slice_samples
  if n == 0:
    return np.pad(audio, (0, slice_samples - len(audio)))[None]
  return audio[:n * slice_samples].reshape(n, slice_samples)


def _to_mono(waveform) -> np.ndarray:
  x = np.asarray(waveform, dtype=np.float32)
  if x.ndim == 2:   # [samples, channels] (soundfile) or [channels, samples] (librosa)
    x = x.mean(axis=1) if x.shape[0] > x.shape[1] else x.mean(axis=0)
  if x.ndim != 1:
    raise ValueError(f"waveform must be [samples] or [samples, channels], got {x.shape}")
  return x


@dataclasses.dataclass
class Pretrained:
  """A frozen encoder with its front-end; see the module doc."""
  encoder: encoder_lib.Encoder
  variables: dict                 # {"params", "batch_stats"?} of the encoder alone
  frontend: fe.FrontendConfig
  meta: dict
  step: int
  workdir: str = ""
  kind: str = "checkpoint"        # "checkpoint" or "untrained" (random init from the meta)
  batch_size: int = 256
  mesh: Any = None

  def __post_init__(self):
    if self.mesh is None:
      self.mesh = parallel.make_mesh()
    self.variables = jax.device_put(self.variables, parallel.replicated(self.mesh))
    self._fn = make_embed_fn(self.encoder, self.frontend, self.mesh)
    self._mel_fn = make_embed_mel_fn(self.encoder, self.mesh)

  # ------------------------------------------------------------------ description
  @property
  def embedding_dim(self) -> int:
    return int(self.encoder.embedding_dim)

  @property
  def sample_rate(self) -> int:
    return int(self.frontend.sample_rate)

  @property
  def slice_samples(self) -> int:
    return int(self.frontend.slice_samples)

  @property
  def identity(self) -> str:
    """Names the weights for caches: the checkpoint step, or the random init's seed."""
    if self.kind == "untrained":
      return f"untrained-seed{self.meta['config'].get('seed', 0)}"
    return f"step{self.step}"

  @property
  def info(self) -> dict:
    enc = self.meta.get("encoder", {})
    return {"task": self.meta.get("task"), "kind": self.kind, "step": self.step,
            "workdir": self.workdir, "width": self.encoder.width,
            "embedding_dim": self.embedding_dim,
            "params": enc.get("encoder_params", encoder_lib.count_params(self.variables["params"])),
            "flops_per_slice": enc.get("encoder_flops_per_slice"),
            "block_channels": enc.get("block_channels"), "norm": self.encoder.norm,
            "frontend": self.frontend.to_dict(), "data": self.meta.get("data")}

  # ------------------------------------------------------------------ embedding
  def embed_batch(self, slices_audio) -> np.ndarray:
    """Audio slices [B, slice_samples] (float in [-1, 1] or int16) -> embeddings [B, D]."""
    x = np.asarray(slices_audio)
    if x.ndim != 2 or x.shape[1] != self.slice_samples:
      raise ValueError(f"expected [B, {self.slice_samples}] slices, got {x.shape}")
    if x.dtype != np.int16:
      x = x.astype(np.float32, copy=False)
    if len(x) == 0:
      return np.zeros((0, self.embedding_dim), np.float32)
    return run_batched(self._fn, self.variables, x, self.batch_size, self.mesh)

  def embed_mel(self, mel) -> np.ndarray:
    """Log-mel slices [B, frames, mels] -> embeddings [B, D]."""
    mel = np.asarray(mel, np.float32)
    if len(mel) == 0:
      return np.zeros((0, self.embedding_dim), np.float32)
    return run_batched(self._mel_fn, self.variables, mel, self.batch_size, self.mesh)

  def prepare(self, waveform, sample_rate: int) -> np.ndarray:
    """Mono float32 at the model's rate (soxr)."""
    x = _to_mono(waveform)
    if sample_rate != self.sample_rate:
      import soxr
      x = soxr.resample(x, sample_rate, self.sample_rate).astype(np.float32, copy=False)
    return x

  def slices(self, waveform, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(non-overlapping slices [n, slice_samples], slice centres [n] in seconds)."""
    x = self.prepare(waveform, sample_rate)
    s = split_slices(x, self.slice_samples)
    times = (np.arange(len(s)) + 0.5) * self.slice_samples / self.sample_rate
    return s, times

  def embed(self, waveform, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """One clip -> (embeddings [n_slices, D], slice centres [n_slices] in seconds).

    Non-overlapping 96-frame slices (0.975 s at 16 kHz); the tail shorter than a
    slice is dropped; a clip shorter than one slice is zero-padded to one.
    """
    s, times = self.slices(waveform, sample_rate)
    return self.embed_batch(s), times


# ====================================================================== loading

def _config(meta: dict) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(meta["config"])


def _build(config: ml_collections.ConfigDict, meta: dict):
  from ssl_audio import train   # heavy import, only when loading
  task = train.build_task(config)
  num_classes = len(meta.get("classes") or []) or None
  model = task.model(num_classes)
  return train, task, model, num_classes


def abstract_state(config: ml_collections.ConfigDict, meta: dict, mesh=None):
  """The TrainState's shapes and dtypes, as the trainer builds it (no FLOPs spent)."""
  train, task, model, num_classes = _build(config, meta)
  tx, _ = train.make_optimizer(config)

  def make():
    variables = model.init(jax.random.key(0), task.example_batch(2, num_classes or 2), train=False)
    return train.TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                            batch_stats=variables.get("batch_stats", {}),
                            opt_state=tx.init(variables["params"]))
  shapes = jax.eval_shape(make)
  sharding = parallel.replicated(mesh or parallel.make_mesh())
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def resolve_checkpoint(path: str, step: int | None = None) -> tuple[str, int | None]:
  """A workdir, its checkpoints/ folder or one checkpoints/<step> folder -> (workdir, step)."""
  path = os.path.abspath(os.path.expanduser(str(path)))
  base = os.path.basename(path.rstrip("/"))
  parent = os.path.dirname(path.rstrip("/"))
  if base.isdigit() and os.path.basename(parent) == "checkpoints":
    return os.path.dirname(parent), int(base) if step is None else step
  if base == "checkpoints" and not os.path.isdir(os.path.join(path, "checkpoints")):
    return parent, step
  return path, step


def load_pretrained(workdir: str, step: int | None = None, batch_size: int = 256,
                    mesh=None) -> Pretrained:
  """Loads the encoder of ``workdir`` (latest checkpoint step unless ``step``).

  ``workdir`` may also be a ``<workdir>/checkpoints/<step>`` folder.
  """
  workdir, step = resolve_checkpoint(workdir, step)
  if not os.path.isdir(ckpt.checkpoint_dir(workdir)):
    raise FileNotFoundError(f"no checkpoints under {workdir} (expected {ckpt.checkpoint_dir(workdir)})")
  mgr = ckpt.manager(workdir, read_only=True)
  try:
    steps = mgr.all_steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoint steps in {ckpt.checkpoint_dir(workdir)}")
    if step is None:
      step = mgr.latest_step()
    elif step not in steps:
      raise FileNotFoundError(f"step {step} not in {workdir}: have {sorted(steps)}")
    meta = ckpt.restore_meta(mgr, step)
    config = _config(meta)
    mesh = mesh or parallel.make_mesh()
    state, _, _ = ckpt.restore(mgr, step, abstract_state(config, meta, mesh))
  finally:
    mgr.close()
  variables = {"params": state.params["encoder"]}
  if state.batch_stats and "encoder" in state.batch_stats:
    variables["batch_stats"] = state.batch_stats["encoder"]
  return Pretrained(encoder=encoder_from_config(meta["config"]), variables=variables,
                    frontend=fe.FrontendConfig.from_dict(meta["frontend"]), meta=meta,
                    step=int(step), workdir=workdir, kind="checkpoint",
                    batch_size=batch_size, mesh=mesh)


def load_meta(workdir: str, step: int | None = None) -> tuple[dict, int]:
  workdir, step = resolve_checkpoint(workdir, step)
  mgr = ckpt.manager(workdir, read_only=True)
  try:
    step = mgr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint steps in {ckpt.checkpoint_dir(workdir)}")
    return ckpt.restore_meta(mgr, step), int(step)
  finally:
    mgr.close()


def random_init(meta: dict, seed: int | None = None, workdir: str = "", batch_size: int = 256,
                mesh=None) -> Pretrained:
  """The Untrained baseline: the same architecture as ``meta`` at its random init.

  With the config's seed this is bit-for-bit the step-0 weights of that run (the
  trainer initialises with ``init_variables(model, task, config.seed, ...)``).
  """
  config = _config(meta)
  train, task, model, num_classes = _build(config, meta)
  seed = int(config.get("seed", 0)) if seed is None else int(seed)
  variables = train.init_variables(model, task, seed, num_classes or 2)
  enc_vars = {"params": variables["params"]["encoder"]}
  if "batch_stats" in variables and "encoder" in variables["batch_stats"]:
    enc_vars["batch_stats"] = variables["batch_stats"]["encoder"]
  meta = dict(meta)
  meta["config"] = dict(meta["config"], seed=seed)
  return Pretrained(encoder=encoder_from_config(meta["config"]), variables=enc_vars,
                    frontend=fe.FrontendConfig.from_dict(meta["frontend"]), meta=meta,
                    step=0, workdir=workdir, kind="untrained", batch_size=batch_size,
                    mesh=mesh)
