"""Orbax checkpoints: train state + data-iterator state + JSON metadata, one step each.

Layout: ``<workdir>/checkpoints/<step>/{state,data,meta}``. ``meta`` holds the
config, the front-end settings and the encoder's params and FLOPs, so anything
that loads a checkpoint (eval, notebooks, HEAR) rebuilds exactly the trained model.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, max_to_keep: int = 3, read_only: bool = False,
            async_save: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
      enable_async_checkpointing=async_save, cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "data", "meta"))


def save(mgr: ocp.CheckpointManager, step: int, state: Any, data_state: dict | None,
         meta: dict) -> bool:
  return mgr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state or {}),
      meta=ocp.args.JsonSave(meta)), force=True)


def restore(mgr: ocp.CheckpointManager, step: int, abstract_state: Any
            ) -> tuple[Any, dict, dict]:
  """Restores (state, data-iterator state, metadata) against an abstract state tree."""
  r = mgr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
  return r["state"], r["data"], r["meta"]


def restore_meta(mgr: ocp.CheckpointManager, step: int) -> dict:
  return mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def resolve(path: str, step: int | None = None) -> tuple[str, int | None]:
  """A workdir, its checkpoints/ folder or one checkpoints/<step> folder -> (workdir, step)."""
  path = os.path.abspath(os.path.expanduser(str(path)))
  base = os.path.basename(path.rstrip("/"))
  parent = os.path.dirname(path.rstrip("/"))
  if base.isdigit() and os.path.basename(parent) == "checkpoints":
    return os.path.dirname(parent), int(base) if step is None else step
  if base == "checkpoints" and not os.path.isdir(os.path.join(path, "checkpoints")):
    return parent, step
  return path, step


def read_meta(path: str, step: int | None = None) -> tuple[dict, int]:
  """(metadata, step) of a checkpoint (the latest step unless ``step``) of a workdir."""
  workdir, step = resolve(path, step)
  if not os.path.isdir(checkpoint_dir(workdir)):
    raise FileNotFoundError(f"no checkpoints under {workdir} (expected {checkpoint_dir(workdir)})")
  mgr = manager(workdir, read_only=True)
  try:
    steps = mgr.all_steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoint steps in {checkpoint_dir(workdir)}")
    step = mgr.latest_step() if step is None else step
    if step not in steps:
      raise FileNotFoundError(f"step {step} not in {workdir}: have {sorted(steps)}")
    return restore_meta(mgr, step), int(step)
  finally:
    mgr.close()


def restore_encoder(path: str, step: int | None = None) -> tuple[dict, dict, int]:
  """(metadata, the encoder's {"params", "batch_stats"?} as numpy, step), read without
  building the model (no abstract tree: any method's checkpoint; the distillation
  teacher)."""
  meta, step = read_meta(path, step)
  workdir, _ = resolve(path, step)
  with ocp.StandardCheckpointer() as c:
    tree = c.restore(os.path.join(checkpoint_dir(workdir), str(step), "state"))
  variables = {k: tree[k]["encoder"] for k in ("params", "batch_stats")
               if hasattr(tree.get(k), "keys") and "encoder" in tree[k]}
  if "params" not in variables:
    raise ValueError(f"{workdir} step {step}: no encoder parameters in the checkpoint")
  return meta, variables, step
