"""The one trainer: every pretext task and baseline runs through ``train_and_evaluate``.

Init -> restore the latest checkpoint (state + data-iterator state) if any ->
loop {host batch -> global array -> shard_mapped step -> log -> evaluators ->
checkpoint}. The step is per-device code: gradients and metrics are averaged
with ``lax.pmean`` over the data axis, BatchNorm statistics too, so 1 and N
devices compute the same update.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax.sharding import PartitionSpec as P

from ssl_audio import checkpoint as ckpt
from ssl_audio import config_validation
from ssl_audio import encoder as encoder_lib
from ssl_audio import environment
from ssl_audio import evaluators
from ssl_audio import input_pipeline
from ssl_audio import frontend as fe
from ssl_audio import manifest as manifest_lib
from ssl_audio import normalization
from ssl_audio import parallel
from ssl_audio import paths
from ssl_audio import tasks
from ssl_audio.embed import Embedder
from ssl_audio.metric_writer import MetricWriter
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.state import (TrainState, build_model, build_task, create_train_state,
                             encoder_info, encoder_variables)


def data_source(c: ml_collections.ConfigDict, task_cls) -> str:
  return c.data.train if task_cls.needs_labels else c.data.pretrain


def with_input_stats(config: ml_collections.ConfigDict, manifest, mgr) -> ml_collections.ConfigDict:
  """The config with ``encoder.input_mean/std`` set when ``encoder.input_norm == "pool"``:
  measured on the pool at step 0, read back from the checkpoint when resuming."""
  if config.encoder.input_norm != "pool":
    return config
  config = ml_collections.ConfigDict(config.to_dict())   # the caller's config is not changed
  if mgr.latest_step() is not None:
    _, meta = ckpt.restore_latest(mgr, lambda step: ckpt.restore_meta(mgr, step))
    enc = meta["config"]["encoder"]
    mean, std = enc["input_mean"], enc["input_std"]
  else:
    mean, std = normalization.log_mel_stats(manifest, fe.FrontendConfig.from_dict(config.frontend),
                                            seed=config.seed)
  config.encoder.input_mean, config.encoder.input_std = float(mean), float(std)
  return config


def make_step_body(model, task: tasks.Task, tx: optax.GradientTransformation,
                   schedule: optax.Schedule):
  """The per-device step ``(state, batch, rng) -> (state, metrics)``, not yet shard_mapped.

  ``rng`` is the augmentation key. The centralised step and the federated client
  update (``ssl_audio.federated.client``) both run this one body.
  """

  def per_device(state: TrainState, batch, rng):
    rngs = {"augment": rng}

    def loss_fn(params):
      variables = {"params": params}
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
      outputs, mutated = model.apply(variables, batch, train=True, mutable=["batch_stats"],
                                     rngs=rngs)
      loss, metrics = task.loss(outputs, batch)
      return loss, (metrics, mutated.get("batch_stats", state.batch_stats))

    (loss, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, DATA_AXIS)
    metrics = jax.lax.pmean({"loss": loss, **metrics}, DATA_AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.global_norm(grads)
    # A non-finite loss or gradient (e.g. a pathological batch) skips the update
    # instead of poisoning the parameters; the step still advances and is counted.
    ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    new_state = TrainState(step=state.step + 1, params=keep(params, state.params),
                           batch_stats=keep(batch_stats, state.batch_stats),
                           opt_state=keep(opt_state, state.opt_state))
    metrics.update(grad_norm=grad_norm, learning_rate=schedule(state.step),
                   nonfinite=1.0 - ok.astype(jnp.float32))
    return new_state, metrics

  return per_device


def make_train_step(model, task: tasks.Task, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, mesh, seed: int = 0):
  """The shard_mapped step: (state, batch) -> (state, metrics).

  The augmentation key is a function of (seed, step) alone, so a resumed run draws
  exactly what an uninterrupted one does.
  """
  body = make_step_body(model, task, tx, schedule)

  def per_device(state: TrainState, batch):
    return body(state, batch, jax.random.fold_in(jax.random.key(seed), state.step))

  return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                             out_specs=(P(), P()), donate_argnums=(0,))


class NonFiniteLoss(RuntimeError):
  """The loss stayed non-finite for config.max_nonfinite_steps steps in a row."""


def _log_means(host: list[dict]) -> dict:
  """Per-key means over the steps since the last log; a skipped (non-finite) step's values
  are left out, so one bad batch does not turn the logged loss into NaN."""
  ok = [m for m in host if not m["nonfinite"]] or host
  out = {k: float(np.mean([m[k] for m in ok])) for k in host[0]}
  out["nonfinite"] = float(np.sum([m["nonfinite"] for m in host]))
  return out


def _nonfinite_streak(streak: int, host: list[dict]) -> int:
  for m in host:
    streak = streak + 1 if m["nonfinite"] else 0
  return streak


class _StopSignal:
  """Turns SIGTERM (preemption) into a flag the loop checks: save, then exit."""

  def __init__(self):
    self.received = False
    self._old = None

  def __enter__(self):
    try:
      self._old = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. a notebook worker): no handler
      self._old = None
    return self

  def _handle(self, signum, frame):
    logging.warning("SIGTERM: saving a checkpoint and stopping")
    self.received = True

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)


def _progress(total: int, initial: int):
  if not sys.stderr.isatty() or jax.process_index() != 0:
    return None
  try:
    from tqdm import tqdm
  except ImportError:
    return None
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


@dataclasses.dataclass
class Setup:
  """What a training loop builds from a config before its first step."""
  config: ml_collections.ConfigDict   # with the pool's input statistics when input_norm="pool"
  manifest: manifest_lib.Manifest     # the training rows (train split for labelled tasks)
  task: tasks.Task
  model: Any
  state: TrainState                   # step 0, on the host
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  classes: list
  meta: dict                          # the checkpoint metadata


def setup(config: ml_collections.ConfigDict, workdir: str, mgr,
          manifest: manifest_lib.Manifest | None = None) -> Setup:
  """Data, task, model and step-0 state of a run; writes config.json. Shared by the
  centralised trainer and the federated loop (ssl_audio/federated/loop.py), which
  passes the ``manifest`` it has already resolved and checked."""
  is_chief = jax.process_index() == 0
  task_cls = tasks.get(config.task.name)
  if manifest is None:
    manifest = manifest_lib.resolve(data_source(config, task_cls))
  config = with_input_stats(config, manifest, mgr)
  if is_chief:
    paths.write_atomic(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  classes, class_counts = [], []
  if task_cls.needs_labels:
    manifest = manifest_lib.ensure_split(manifest).where(split="train")
    classes, class_counts = manifest.label_counts()
  task = build_task(config, classes, class_counts)
  model = build_model(task)
  state, tx, schedule = create_train_state(config, task, model)
  if config.get("init_from") and mgr.latest_step() is None:   # fine-tune (QAT); resumes skip it
    from ssl_audio import pretrained
    state = pretrained.with_encoder_from(state, tx, config.init_from)
    logging.info("encoder initialised from %s", config.init_from)
  info = encoder_info(config, task, state.variables())
  logging.info("encoder: %s params, %.2f MFLOPs per slice (XLA), width %s; model total %s params",
               f"{info['encoder_params']:,}", info["encoder_flops_per_slice"] / 1e6,
               config.encoder.width, f"{info['total_params']:,}")
  # Everything a loader needs to rebuild the model without the training data.
  meta = {"config": json.loads(config.to_json_best_effort()), "task": task.name,
          "frontend": task.frontend.to_dict(), "encoder": info, "classes": classes,
          "class_counts": [float(n) for n in class_counts], "data": manifest.name,
          "environment": environment.history(None, 0)}
  return Setup(config, manifest, task, model, state, tx, schedule, classes, meta)


def evaluate_encoder(due, encoder, variables: dict, frontend, mesh, writer: MetricWriter,
                     step: int) -> dict:
  """Runs the evaluators ``due`` on the encoder part of ``variables``; writes and returns
  their metrics (the centralised and the federated loop alike)."""
  embedder = Embedder(encoder, encoder_variables(variables), frontend,
                      identity=f"train-step{step}", mesh=mesh)
  out = {}
  for ev in due:
    res = ev.run(embedder, step)
    writer.write(step, res)
    out.update(res)
  return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) in ``workdir``; returns the last logged metrics."""
  config_validation.check_config(config)
  parallel.maybe_initialize_distributed(config)
  is_chief = jax.process_index() == 0
  paths.mkdir(workdir)   # a local folder, or a gs:// URL whose bucket is checked here
  mesh = parallel.make_mesh(config.num_devices or None)
  local_bs = parallel.local_batch_size(config.batch_size, mesh)
  mgr = ckpt.manager(workdir, max_to_keep=config.keep_checkpoints)

  run = setup(config, workdir, mgr)
  config, manifest, task, model, tx, schedule, meta = (
      run.config, run.manifest, run.task, run.model, run.tx, run.schedule, run.meta)
  classes = run.classes
  state = jax.device_put(run.state, parallel.replicated(mesh))

  data_it = input_pipeline.make_train_iterator(
      manifest, task, local_bs, config.seed, config.data.num_workers, classes or None,
      task.frontend.sample_rate,
      packed_root=config.data.packed_dir if config.data.get("packed") else None)
  start = 0
  if mgr.latest_step() is not None:
    abstract = ckpt.abstract(state)
    # A damaged newest step (truncated file, half-written) is skipped, named, and set aside.
    start, (state, data_state, restored_meta) = ckpt.restore_latest(
        mgr, lambda step: ckpt.restore(mgr, step, abstract))
    ckpt.set_aside_after(mgr, start)
    meta["environment"] = environment.history(restored_meta, start)
    state = jax.device_put(state, parallel.replicated(mesh))
    if data_state:
      data_it.set_state(data_state)
    logging.info("resumed from step %d", start)

  evals = evaluators.make_evaluators(config, task.frontend, mesh)
  encoder = encoder_lib.from_config(config.encoder)

  writer = MetricWriter(workdir, enabled=is_chief)
  if start == 0 and config.num_train_steps == 0:
    ckpt.save(mgr, 0, state, data_it.get_state(), meta)   # the Untrained baseline
    ckpt.wait(mgr)
    writer.close()
    return {}

  def run_evaluators(due, step: int) -> dict:
    return evaluate_encoder(due, encoder, state.variables(), task.frontend, mesh, writer, step)

  if start == 0 and evals:
    run_evaluators(evals, 0)   # the curve starts at the random init (the Untrained point)

  step_fn = make_train_step(model, task, tx, schedule, mesh, seed=config.seed)
  pending: list[dict] = []
  last: dict = {}
  streak = 0   # consecutive non-finite steps, counted when the metrics reach the host
  t_log, n_log, t_wait = time.time(), 0, 0.0
  bar = _progress(config.num_train_steps, start)
  with _StopSignal() as stop:
    step = start
    while step < config.num_train_steps:
      t_next = time.perf_counter()
      batch = parallel.global_batch(next(data_it), mesh)
      t_wait += time.perf_counter() - t_next   # host time blocked on the input pipeline
      data_state = data_it.get_state()   # the state to resume from after this step
      state, metrics = step_fn(state, batch)
      step += 1
      pending.append(metrics)
      n_log += 1
      if bar is not None:
        bar.update(1)
      final = step == config.num_train_steps
      if step % config.log_every_steps == 0 or final or stop.received:
        host = jax.device_get(pending)
        dt = time.time() - t_log
        last = _log_means(host)
        streak = _nonfinite_streak(streak, host)
        last.update(steps_per_s=n_log / dt, examples_per_s=n_log * config.batch_size / dt,
                    input_wait_frac=min(t_wait / dt, 1.0), skipped_files=data_it.skipped,
                    filtered_files=len(data_it.filtered))
        writer.write(step, last)
        if bar is not None:
          bar.set_postfix(loss=f"{last['loss']:.4f}", base=f"{last.get('baseline_loss', float('nan')):.4f}")
        else:
          logging.info("step %d: %s", step, " ".join(f"{k}={v:.4g}" for k, v in last.items()))
        pending, t_log, n_log, t_wait = [], time.time(), 0, 0.0
        if config.max_nonfinite_steps and streak >= config.max_nonfinite_steps:
          ckpt.wait(mgr)
          writer.close()
          good = mgr.latest_step()
          kept = "no checkpoint yet" if good is None else f"step {good} in {mgr.directory}"
          raise NonFiniteLoss(
              f"the loss was NaN or inf for {streak} consecutive steps (up to step {step}; "
              f"config.max_nonfinite_steps={config.max_nonfinite_steps}): stopping. Those updates "
              f"were skipped, so the last checkpoint ({kept}) holds finite parameters. Lower "
              "optimizer.learning_rate, set optimizer.grad_clip_norm, or check the data")
      due = [ev for ev in evals if step % ev.every_steps == 0 or final]
      if due:
        last.update(run_evaluators(due, step))
        t_log = time.time()   # probe time is not training time
      if step % config.checkpoint_every_steps == 0 or final or stop.received:
        ckpt.save(mgr, step, state, data_state, meta)
      if stop.received:
        break
  if bar is not None:
    bar.close()
  ckpt.wait(mgr)
  writer.close()
  return last
