"""Orbax checkpoints: train state + data-iterator state + JSON metadata, one step each.

Layout: ``<workdir>/checkpoints/<step>/{state,data,meta}``. ``meta`` holds the
config, the front-end settings and the encoder's params and FLOPs, so anything
that loads a checkpoint (eval, notebooks, HEAR) rebuilds exactly the trained model.
A federated run adds ``server`` (the server optimizer, RNG, clients' local state):
loaders that only want the model never read it.
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
                               item_names=("state", "data", "meta", "server"))


def save(mgr: ocp.CheckpointManager, step: int, state: Any, data_state: dict | None,
         meta: dict, server: Any = None) -> bool:
  items = dict(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state or {}),
               meta=ocp.args.JsonSave(meta))
  if server is not None:
    items["server"] = ocp.args.StandardSave(server)
  return mgr.save(step, args=ocp.args.Composite(**items), force=True)


def restore(mgr: ocp.CheckpointManager, step: int, abstract_state: Any
            ) -> tuple[Any, dict, dict]:
  """Restores (state, data-iterator state, metadata) against an abstract state tree."""
  r = mgr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
  return r["state"], r["data"], r["meta"]


def restore_server(mgr: ocp.CheckpointManager, step: int, abstract_server: Any) -> Any:
  """The ``server`` item of a federated checkpoint, against its abstract tree."""
  return mgr.restore(step, args=ocp.args.Composite(
      server=ocp.args.StandardRestore(abstract_server)))["server"]


def restore_meta(mgr: ocp.CheckpointManager, step: int) -> dict:
  return mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
