"""A trained encoder out of a pretraining workdir, for notebooks, eval and HEAR.

    from ssl_audio import load_pretrained
    pre = load_pretrained("runs/tg")              # latest checkpoint step
    emb, times = pre.embed(waveform, sample_rate)  # [n_slices, D], slice centres in s
    pre.info                                       # task, width, params, FLOPs, step, ...

Everything is rebuilt from the checkpoint's ``meta`` (config, front-end, classes),
never from today's defaults nor from the training data, so a checkpoint keeps
loading after the defaults move or the data is gone. The whole train state is
restored against the abstract tree ``state.abstract_train_state`` builds from that
config (which also checks that the checkpoint matches the architecture); only the
encoder's params and BatchNorm statistics are kept. A
``--config.num_train_steps=0`` run (the Untrained baseline) loads the same way;
``random_init`` builds it without a run.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from ssl_audio import checkpoint as ckpt
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import parallel
from ssl_audio import state as state_lib
from ssl_audio.embed import Embedder, split_slices  # noqa: F401  (split_slices: public here too)


@dataclasses.dataclass
class Pretrained(Embedder):
  """A frozen encoder with its front-end and the checkpoint it came from."""
  meta: dict = dataclasses.field(default_factory=dict)
  step: int = 0
  workdir: str = ""
  kind: str = "checkpoint"        # "checkpoint" or "untrained" (random init from the meta)

  def __post_init__(self):
    if not self.identity:
      self.identity = (f"untrained-seed{self.meta['config'].get('seed', 0)}"
                       if self.kind == "untrained" else f"step{self.step}")
      q = self.meta["config"]["encoder"].get("quant", "none")
      if q != "none":   # caches keyed by identity must not mix float and int8 embeddings
        self.identity += f"-{q}"
    super().__post_init__()

  @property
  def info(self) -> dict:
    enc = self.meta.get("encoder", {})
    return {"task": self.meta.get("task"), "kind": self.kind, "step": self.step,
            "workdir": self.workdir, "width": self.encoder.width,
            "embedding_dim": self.encoder.embedding_dim, "features": self.features,
            "params": enc.get("encoder_params", encoder_lib.count_params(self.variables["params"])),
            "flops_per_slice": enc.get("encoder_flops_per_slice"),
            "block_channels": enc.get("block_channels"), "norm": self.encoder.norm,
            "frontend": self.frontend.to_dict(), "data": self.meta.get("data"),
            "environment": self.meta.get("environment", [])}   # where it was trained


# ====================================================================== loading

def task_and_model(meta: dict):
  """(config, task, model) as the trainer built them, from a checkpoint's metadata alone."""
  config = ml_collections.ConfigDict(meta["config"])
  task = state_lib.build_task(config, meta.get("classes"), meta.get("class_counts"))
  return config, task, state_lib.build_model(task)


def _pretrained(meta: dict, variables: dict, **kwargs) -> Pretrained:
  return Pretrained(encoder=encoder_lib.from_config(meta["config"]["encoder"]),
                    variables=state_lib.encoder_variables(variables),
                    frontend=fe.FrontendConfig.from_dict(meta["frontend"]), meta=meta, **kwargs)


resolve_checkpoint = ckpt.resolve   # public here too


def load_pretrained(workdir: str, step: int | None = None, batch_size: int = 256,
                    mesh=None, features: str = "embedding", quant: str | None = None) -> Pretrained:
  """Loads the encoder of ``workdir`` (latest checkpoint step unless ``step``).

  ``workdir`` may also be a ``<workdir>/checkpoints/<step>`` folder. ``quant``
  overrides the checkpoint's ``encoder.quant`` ("w8a8": post-training int8 of a float
  checkpoint, ssl_audio.quant; "none": a QAT checkpoint in float).
  """
  workdir, step = resolve_checkpoint(workdir, step)
  steps = ckpt.check_steps(workdir, step)   # names a missing workdir or step
  mgr = ckpt.manager(workdir, read_only=True)
  try:
    mesh = mesh or parallel.make_mesh()

    def load(step):
      meta = ckpt.restore_meta(mgr, step)
      config, task, model = task_and_model(meta)   # the checkpoint's tree is the float one
      abstract = state_lib.abstract_train_state(config, task, model, parallel.replicated(mesh))
      return meta, ckpt.restore(mgr, step, abstract)[0]

    if step is None:   # the newest step that restores; damaged newer ones are named in a warning
      step, (meta, state) = ckpt.restore_latest(mgr, load)
    else:
      try:
        meta, state = load(step)
      except ckpt.DamagedCheckpoint as e:
        others = sorted(s for s in steps if s != step)
        raise ckpt.DamagedCheckpoint(f"{e}; other steps in {workdir}: {others}") from None
  finally:
    mgr.close()
  if quant is not None:
    from ssl_audio import quant as quant_lib
    enc = dict(meta["config"]["encoder"], quant=quant_lib.check_mode(quant, "quant"))
    meta = dict(meta, config=dict(meta["config"], encoder=enc))
  return _pretrained(meta, state.variables(), step=int(step), workdir=workdir,
                     kind="checkpoint", batch_size=batch_size, mesh=mesh, features=features)


def with_encoder_from(state, tx, source: str, key: str = "init_from"):
  """``state`` (step 0) with its encoder's params and BatchNorm statistics taken from
  the checkpoint at ``source`` (a workdir or one step), the optimizer state fresh:
  fine-tuning (QAT: configs/qat.py). The architectures must match."""
  import jax.numpy as jnp
  try:
    pre = load_pretrained(source)
  except FileNotFoundError as e:
    raise ValueError(f"config.{key}: {e}") from e
  mine = state_lib.encoder_variables(state.variables())
  shapes = lambda t: jax.tree.map(lambda a: tuple(a.shape), t)
  if shapes(mine) != shapes(pre.variables):
    raise ValueError(f"config.{key}: the encoder of {source} (width {pre.encoder.width}, "
                     f"norm {pre.encoder.norm}) does not match config.encoder")
  params = dict(state.params, encoder=jax.tree.map(jnp.asarray, pre.variables["params"]))
  batch_stats = state.batch_stats
  if "batch_stats" in pre.variables:
    batch_stats = dict(batch_stats, encoder=jax.tree.map(jnp.asarray, pre.variables["batch_stats"]))
  return state.replace(params=params, batch_stats=batch_stats, opt_state=tx.init(params))


def load_meta(workdir: str, step: int | None = None) -> tuple[dict, int]:
  return ckpt.read_meta(workdir, step)


POOL_BN_SLICES = 1024


def with_pool_batch_stats(pre: Pretrained, n_slices: int = POOL_BN_SLICES,
                          seed: int = 0) -> Pretrained:
  """``pre`` with BatchNorm statistics measured on its run's own training pool.

  A trained encoder carries running statistics of its pretraining pool; a random
  init carries identity statistics (mean 0, variance 1), i.e. no normalisation at
  all. Measured on the suite, the statistics alone move the random encoder by up
  to 15 points (instrument down, digits up), so the Untrained baseline that
  isolates what learning adds gets the pool's statistics too: one random slice of
  each of ``n_slices`` random files of ``config.data.pretrain`` (``data.train``
  for supervised runs), precise-BN (``embed.reestimate_batch_stats``).
  """
  from ssl_audio import embed as embed_lib
  from ssl_audio import manifest as manifest_lib
  from ssl_audio import normalization
  config, task, _ = task_and_model(pre.meta)
  source = config.data.train if task.needs_labels else config.data.pretrain
  try:
    pool = manifest_lib.resolve(source)
  except Exception as e:   # noqa: BLE001  (any reason the pool cannot be read)
    raise ValueError(f"BatchNorm statistics of the pool: cannot read the run's pool {source!r} "
                     f"({e}); use the Untrained baseline with init statistics instead") from e
  slices = normalization.random_slices(pool, pre.frontend, n_slices, seed)
  out = embed_lib.reestimate_batch_stats(pre, slices, max_slices=n_slices, seed=seed)
  return out.with_variables(out.variables, identity=f"{pre.identity}-poolbn{len(slices)}s{seed}")


def random_init(meta: dict, seed: int | None = None, workdir: str = "", batch_size: int = 256,
                mesh=None, features: str = "embedding") -> Pretrained:
  """The Untrained baseline: the same architecture as ``meta`` at its random init.

  With the config's seed this is bit-for-bit the step-0 weights of that run (the
  trainer initialises with ``state.init_variables(model, task, config.seed)``).
  """
  config, task, model = task_and_model(meta)
  seed = int(config.get("seed", 0)) if seed is None else int(seed)
  variables = state_lib.init_variables(model, task, seed)
  meta = dict(meta, config=dict(meta["config"], seed=seed))
  return _pretrained(meta, jax.device_get(variables), step=0, workdir=workdir, kind="untrained",
                     batch_size=batch_size, mesh=mesh, features=features)
