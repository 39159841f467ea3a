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

from ssl_audio import paths


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(paths.absolute(workdir), "checkpoints")


def manager(workdir: str, max_to_keep: int = 3, read_only: bool = False,
            async_save: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
      enable_async_checkpointing=async_save, cleanup_tmp_directories=not read_only)
  # paths.path checks a gs:// bucket first; Orbax coordinates the hosts of a multi-host run.
  return ocp.CheckpointManager(paths.path(checkpoint_dir(workdir)), options=options,
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
