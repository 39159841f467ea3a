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
import os

import jax
import ml_collections

from ssl_audio import checkpoint as ckpt
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import parallel
from ssl_audio import paths
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
            "frontend": self.frontend.to_dict(), "data": self.meta.get("data")}


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


def resolve_checkpoint(path: str, step: int | None = None) -> tuple[str, int | None]:
  """A workdir, its checkpoints/ folder or one checkpoints/<step> folder -> (workdir, step)."""
  path = paths.absolute(str(path)).rstrip("/")   # a local path or a gs:// URL
  base = os.path.basename(path)
  parent = os.path.dirname(path)
  if base.isdigit() and os.path.basename(parent) == "checkpoints":
    return os.path.dirname(parent), int(base) if step is None else step
  if base == "checkpoints" and not paths.path(os.path.join(path, "checkpoints")).is_dir():
    return parent, step
  return path, step


def load_pretrained(workdir: str, step: int | None = None, batch_size: int = 256,
                    mesh=None, features: str = "embedding") -> Pretrained:
  """Loads the encoder of ``workdir`` (latest checkpoint step unless ``step``).

  ``workdir`` may also be a ``<workdir>/checkpoints/<step>`` folder.
  """
  workdir, step = resolve_checkpoint(workdir, step)
  if not paths.path(ckpt.checkpoint_dir(workdir)).is_dir():
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
    config, task, model = task_and_model(meta)
    mesh = mesh or parallel.make_mesh()
    abstract = state_lib.abstract_train_state(config, task, model, parallel.replicated(mesh))
    state, _, _ = ckpt.restore(mgr, step, abstract)
  finally:
    mgr.close()
  return _pretrained(meta, state.variables(), step=int(step), workdir=workdir,
                     kind="checkpoint", batch_size=batch_size, mesh=mesh, features=features)


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
