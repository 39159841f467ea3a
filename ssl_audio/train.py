"""The one trainer: every pretext task and baseline runs through ``train_and_evaluate``.

Init -> restore the latest checkpoint (state + data-iterator state) if any ->
loop {host batch -> global array -> shard_mapped step -> log -> evaluators ->
checkpoint}. The step is per-device code: gradients and metrics are averaged
with ``lax.pmean`` over the data axis, BatchNorm statistics too, so 1 and N
devices compute the same update.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import flax
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
from ssl_audio import frontend as fe
from ssl_audio import input_pipeline
from ssl_audio import manifest as manifest_lib
from ssl_audio import parallel
from ssl_audio import tasks
from ssl_audio.metric_writer import MetricWriter
from ssl_audio.parallel import DATA_AXIS


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any

  def variables(self) -> dict:
    v = {"params": self.params}
    if self.batch_stats:
      v["batch_stats"] = self.batch_stats
    return v


def make_schedule(c: ml_collections.ConfigDict) -> optax.Schedule:
  o = c.optimizer
  steps = max(c.num_train_steps, 1)
  if o.schedule == "cosine":
    warm = min(o.warmup_steps, steps - 1) if steps > 1 else 0
    return optax.warmup_cosine_decay_schedule(0.0 if warm else o.learning_rate, o.learning_rate,
                                              warm, steps, end_value=o.learning_rate * 0.01)
  if o.warmup_steps:
    return optax.join_schedules([optax.linear_schedule(0.0, o.learning_rate, o.warmup_steps),
                                 optax.constant_schedule(o.learning_rate)], [o.warmup_steps])
  return optax.constant_schedule(o.learning_rate)


def make_optimizer(c: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
  o, lr = c.optimizer, make_schedule(c)
  if o.name == "adam":
    tx = optax.adam(lr)
  elif o.name == "adamw":
    tx = optax.adamw(lr, weight_decay=o.weight_decay)
  else:
    tx = optax.sgd(lr, momentum=o.momentum)
  if o.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), tx)
  return tx, lr


def frontend_config(c: ml_collections.ConfigDict) -> fe.FrontendConfig:
  return fe.FrontendConfig.from_dict(c.frontend)


def build_task(c: ml_collections.ConfigDict) -> tasks.Task:
  return tasks.make_task(c, frontend_config(c))


def data_source(c: ml_collections.ConfigDict, task: tasks.Task) -> str:
  return c.data.train if task.needs_labels else c.data.pretrain


def init_variables(model, task: tasks.Task, seed: int, num_classes: int) -> dict:
  batch = task.example_batch(2, num_classes)
  return jax.jit(lambda k: model.init(k, batch, train=False))(jax.random.key(seed))


def encoder_info(c: ml_collections.ConfigDict, task: tasks.Task, variables: dict) -> dict:
  """Params and FLOPs of the encoder alone (the part every task shares)."""
  enc = encoder_lib.Encoder(width=c.encoder.width, embedding_dim=c.encoder.embedding_dim,
                            norm=c.encoder.norm)
  enc_vars = {k: v["encoder"] for k, v in variables.items() if "encoder" in v}
  fcfg = task.frontend
  info = encoder_lib.describe(enc, enc_vars, (fcfg.slice_frames, fcfg.n_mels))
  info["total_params"] = encoder_lib.count_params(variables["params"])
  return info


def make_train_step(model, task: tasks.Task, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, mesh):
  """The shard_mapped step: (state, batch) -> (state, metrics)."""

  def per_device(state: TrainState, batch):
    def loss_fn(params):
      variables = {"params": params}
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
      outputs, mutated = model.apply(variables, batch, train=True, mutable=["batch_stats"])
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

  return parallel.shard_step(per_device, mesh, in_specs=(P(), P(DATA_AXIS)),
                             out_specs=(P(), P()), donate_argnums=(0,))


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) in ``workdir``; returns the last logged metrics."""
  config_validation.validate(config)
  parallel.maybe_initialize_distributed(config)
  is_chief = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if is_chief:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))

  task = build_task(config)
  mesh = parallel.make_mesh(config.num_devices or None)
  local_bs = parallel.local_batch_size(config.batch_size, mesh)

  manifest = manifest_lib.resolve(data_source(config, task))
  if task.needs_labels:
    manifest = manifest_lib.ensure_split(manifest).where(split="train")
  classes = manifest.labels() if task.needs_labels else []
  num_classes = len(classes) or None
  model = task.model(num_classes)
  tx, schedule = make_optimizer(config)

  variables = init_variables(model, task, config.seed, num_classes or 2)
  info = encoder_info(config, task, variables)
  logging.info("encoder: %s params, %.2f MFLOPs per slice (XLA), width %s; model total %s params",
               f"{info['encoder_params']:,}", info["encoder_flops_per_slice"] / 1e6,
               config.encoder.width, f"{info['total_params']:,}")
  state = TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                     batch_stats=variables.get("batch_stats", {}),
                     opt_state=tx.init(variables["params"]))
  state = jax.device_put(state, parallel.replicated(mesh))
  meta = {"config": json.loads(config.to_json_best_effort()), "task": task.name,
          "frontend": task.frontend.to_dict(), "encoder": info, "classes": classes,
          "data": manifest.name}

  data_it = input_pipeline.make_train_iterator(
      manifest, task, local_bs, config.seed, config.data.num_workers, classes or None,
      task.frontend.sample_rate)
  mgr = ckpt.manager(workdir, max_to_keep=config.keep_checkpoints)
  start = 0
  if mgr.latest_step() is not None:
    start = mgr.latest_step()
    state, data_state, _ = ckpt.restore(mgr, start, ckpt.abstract(state))
    state = jax.device_put(state, parallel.replicated(mesh))
    if data_state:
      data_it.set_state(data_state)
    logging.info("resumed from step %d", start)

  from ssl_audio import evaluators  # in-training probes (config.evals)
  evals = evaluators.make_evaluators(config, task)

  writer = MetricWriter(workdir, enabled=is_chief)
  if start == 0 and config.num_train_steps == 0:
    ckpt.save(mgr, 0, state, data_it.get_state(), meta)   # the Untrained baseline
    mgr.wait_until_finished()
    writer.close()
    return {}

  step_fn = make_train_step(model, task, tx, schedule, mesh)
  pending: list[dict] = []
  last: dict = {}
  t_log, n_log = time.time(), 0
  bar = _progress(config.num_train_steps, start)
  with _StopSignal() as stop:
    step = start
    while step < config.num_train_steps:
      batch = parallel.global_batch(next(data_it), mesh)
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
        last = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
        last.update(steps_per_s=n_log / dt, examples_per_s=n_log * config.batch_size / dt,
                    skipped_files=data_it.skipped)
        writer.write(step, last)
        if bar is not None:
          bar.set_postfix(loss=f"{last['loss']:.4f}", base=f"{last.get('baseline_loss', float('nan')):.4f}")
        else:
          logging.info("step %d: %s", step, " ".join(f"{k}={v:.4g}" for k, v in last.items()))
        pending, t_log, n_log = [], time.time(), 0
      for ev in evals:
        if step % ev.every_steps == 0 or final:
          res = ev.run(state, step)
          writer.write(step, res)
          last.update(res)
          t_log = time.time()   # probe time is not training time
      if step % config.checkpoint_every_steps == 0 or final or stop.received:
        ckpt.save(mgr, step, state, data_state, meta)
      if stop.received:
        break
  if bar is not None:
    bar.close()
  mgr.wait_until_finished()
  writer.close()
  return last
