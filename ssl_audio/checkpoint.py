"""Orbax checkpoints: train state + data-iterator state + JSON metadata, one step each.

Layout: ``<workdir>/checkpoints/<step>/{state,data,meta}``. ``meta`` holds the
config, the front-end settings and the encoder's params and FLOPs, so anything
that loads a checkpoint (eval, notebooks, HEAR) rebuilds exactly the trained model.

A step that exists but cannot be restored (a truncated or missing file, corrupt
metadata) raises ``DamagedCheckpoint`` naming it; ``restore_latest`` falls back to
the newest step that restores, with a warning naming each damaged one.
A federated run adds ``server`` (the server optimizer, RNG, clients' local state):
loaders that only want the model never read it.
"""

from __future__ import annotations

import errno
import os
import re
import time
from typing import Any, Callable, TypeVar

import jax
import orbax.checkpoint as ocp
from absl import logging

T = TypeVar("T")


class DamagedCheckpoint(RuntimeError):
  """A checkpoint step that exists but cannot be restored."""


def _damaged(mgr: ocp.CheckpointManager, step: int, e: Exception) -> DamagedCheckpoint:
  lines = str(e).strip().splitlines()
  reason = lines[0][:300] if lines else ""
  return DamagedCheckpoint(f"checkpoint step {step} in {mgr.directory} is damaged or incomplete "
                           f"({type(e).__name__}: {reason})")

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
                               item_names=("state", "data", "meta", "server"))


class SaveFailed(RuntimeError):
  """A checkpoint could not be written (e.g. the disk is full); older steps are intact."""


def _save_failed(mgr: ocp.CheckpointManager, step: int | None, e: Exception) -> SaveFailed:
  text = str(e)
  # An asynchronous save fails in the background and surfaces at the next save or wait:
  # its temporary folder names the step that failed.
  m = re.search(r"/(\d+)\.orbax-checkpoint-tmp", text)
  failed = int(m.group(1)) if m else step
  full = ("No space left on device" in text or getattr(e, "errno", None) == errno.ENOSPC
          or f"os_error_code='{errno.ENOSPC}'" in text)
  mgr.reload()
  good = [s for s in mgr.all_steps() if failed is None or s < failed]
  kept = f"step {max(good)} is the newest complete one" if good else "no earlier step exists"
  lines = text.strip().splitlines()
  return SaveFailed(
      f"{'the disk is full: ' if full else ''}saving checkpoint step {failed} in {mgr.directory} "
      f"failed ({type(e).__name__}: {lines[0][:300] if lines else ''}); {kept} and is not "
      "touched. Free space (or fix the folder) and re-run the same command to resume")


def save(mgr: ocp.CheckpointManager, step: int, state: Any, data_state: dict | None,
         meta: dict, server: Any = None) -> bool:
  """Starts an (async) save; raises SaveFailed for it or for the previous async save."""
  items = dict(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state or {}),
               meta=ocp.args.JsonSave(meta))
  if server is not None:
    items["server"] = ocp.args.StandardSave(server)
  try:
    return mgr.save(step, args=ocp.args.Composite(**items), force=True)
  except Exception as e:  # TensorStore: ValueError("RESOURCE_EXHAUSTED ..."), OSError...
    raise _save_failed(mgr, step, e) from e


def wait(mgr: ocp.CheckpointManager) -> None:
  """Waits for the async save in flight; raises SaveFailed if it failed."""
  try:
    mgr.wait_until_finished()
  except Exception as e:
    raise _save_failed(mgr, None, e) from e


def restore(mgr: ocp.CheckpointManager, step: int, abstract_state: Any
            ) -> tuple[Any, dict, dict]:
  """Restores (state, data-iterator state, metadata) against an abstract state tree.

  Raises DamagedCheckpoint when the step's files cannot be read.
  """
  try:
    r = mgr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
  except Exception as e:  # Orbax / TensorStore raise plain Exception, OSError, ValueError...
    raise _damaged(mgr, step, e) from e
  return r["state"], r["data"], r["meta"]


def restore_server(mgr: ocp.CheckpointManager, step: int, abstract_server: Any) -> Any:
  """The ``server`` item of a federated checkpoint, against its abstract tree."""
  return mgr.restore(step, args=ocp.args.Composite(
      server=ocp.args.StandardRestore(abstract_server)))["server"]


def restore_meta(mgr: ocp.CheckpointManager, step: int) -> dict:
  try:
    return mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  except Exception as e:
    raise _damaged(mgr, step, e) from e


def restore_latest(mgr: ocp.CheckpointManager, fn: Callable[[int], T]) -> tuple[int, T]:
  """(step, fn(step)) for the newest step where ``fn`` does not raise DamagedCheckpoint.

  Each damaged newer step is named in a warning; when none restores, the error lists them all.
  """
  errors = []
  for step in sorted(mgr.all_steps(), reverse=True):
    try:
      return step, fn(step)
    except DamagedCheckpoint as e:
      logging.warning("%s; trying the previous step", e)
      errors.append(str(e))
  raise DamagedCheckpoint(f"no checkpoint step in {mgr.directory} can be restored (damaged, "
                          "or saved by a different model):\n  " + "\n  ".join(errors or ["none"]))


def set_aside_after(mgr: ocp.CheckpointManager, step: int) -> list[int]:
  """Moves every step newer than ``step`` (damaged ones) to ``checkpoints.damaged/``.

  They are kept for inspection, and the resumed run can save those steps again.
  """
  newer = [s for s in mgr.all_steps() if s > step]
  if newer and jax.process_index() == 0:
    aside = mgr.directory.parent / (mgr.directory.name + ".damaged")
    aside.mkdir(parents=True, exist_ok=True)
    for s in newer:
      target = aside / f"{s}-{int(time.time())}"
      (mgr.directory / str(s)).rename(target)
      logging.warning("moved damaged checkpoint step %d to %s", s, target)
  if newer:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("checkpoint.set_aside_after")
    mgr.reload()
  return newer


def abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def resolve(path: str, step: int | None = None) -> tuple[str, int | None]:
  """A workdir, its checkpoints/ folder or one checkpoints/<step> folder -> (workdir, step)."""
  path = paths.absolute(str(path)).rstrip("/")   # a local path or a gs:// URL
  base = os.path.basename(path)
  parent = os.path.dirname(path)
  if base.isdigit() and os.path.basename(parent) == "checkpoints":
    return os.path.dirname(parent), int(base) if step is None else step
  if base == "checkpoints" and not paths.path(os.path.join(path, "checkpoints")).is_dir():
    return parent, step
  return path, step


def check_steps(workdir: str, step: int | None = None) -> list[int]:
  """The workdir's checkpoint steps; names a missing workdir, no steps or a missing ``step``."""
  if not paths.path(checkpoint_dir(workdir)).is_dir():
    raise FileNotFoundError(f"no checkpoints under {workdir} (expected {checkpoint_dir(workdir)})")
  mgr = manager(workdir, read_only=True)
  try:
    steps = sorted(mgr.all_steps())
  finally:
    mgr.close()
  if not steps:
    raise FileNotFoundError(f"no checkpoint steps in {checkpoint_dir(workdir)}")
  if step is not None and step not in steps:
    raise FileNotFoundError(f"step {step} not in {workdir}: have {steps}")
  return steps


def read_meta(path: str, step: int | None = None) -> tuple[dict, int]:
  """(metadata, step) of a checkpoint of a workdir: ``step``, else the newest step whose
  metadata reads (damaged newer ones are named in a warning)."""
  workdir, step = resolve(path, step)
  check_steps(workdir, step)
  mgr = manager(workdir, read_only=True)
  try:
    if step is not None:
      return restore_meta(mgr, step), int(step)
    step, meta = restore_latest(mgr, lambda s: restore_meta(mgr, s))
    return meta, int(step)
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
