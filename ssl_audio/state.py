"""The train state and everything that builds it from a config.

One place for: the optimizer and its schedule, the task (with its class list for
labelled tasks), the model's initial variables, the ``TrainState`` and its abstract
(shape-only) twin, and picking the encoder's variables out of a model's. Used by
the trainer, the checkpoint loader (``pretrained``), the benchmarks and tests, so
a checkpoint is always restored against exactly the tree the trainer saved.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import tasks


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


# ============================================================================ optimizer

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


# ============================================================================ task and model

def build_task(c: ml_collections.ConfigDict, classes: Sequence[str] | None = None,
               class_counts: Sequence[float] | None = None) -> tasks.Task:
  """The config's task; a labelled task also gets its class list (and counts: the prior).

  The classes come from the training manifest (trainer) or the checkpoint's
  metadata (loader): building a model never reads training data.
  """
  task = tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))
  if task.needs_labels and classes:
    counts = np.ones(len(classes)) if class_counts is None else np.asarray(class_counts, np.float64)
    task.set_classes(list(classes), counts)
  return task


def num_classes(task: tasks.Task) -> int | None:
  """A labelled task's output size (its class list's length); None for the others."""
  return len(task.classes) if task.needs_labels and task.classes else None


def build_model(task: tasks.Task):
  """The task's model; with ``encoder.quant`` its encoder in fake quantization (QAT)."""
  from ssl_audio import quant
  return quant.fake_quant(task.model(num_classes(task)),
                          task.config.encoder.get("quant", "none"), path="encoder/.*")


def init_variables(model, task: tasks.Task, seed: int) -> dict:
  batch = task.example_batch(2, num_classes(task) or 2)
  return jax.jit(lambda k: model.init(k, batch, train=False))(jax.random.key(seed))


def state_from_variables(variables: dict, tx: optax.GradientTransformation) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(variables["params"]))


def create_train_state(c: ml_collections.ConfigDict, task: tasks.Task, model, seed: int | None = None
                       ) -> tuple[TrainState, optax.GradientTransformation, optax.Schedule]:
  """(step-0 state, optimizer, schedule) for ``model`` of ``task`` under config ``c``."""
  tx, schedule = make_optimizer(c)
  variables = init_variables(model, task, c.seed if seed is None else seed)
  return state_from_variables(variables, tx), tx, schedule


def abstract_train_state(c: ml_collections.ConfigDict, task: tasks.Task, model, sharding=None):
  """The TrainState's shapes and dtypes as the trainer builds it (no FLOPs spent)."""
  tx, _ = make_optimizer(c)
  batch = task.example_batch(2, num_classes(task) or 2)
  shapes = jax.eval_shape(
      lambda: state_from_variables(model.init(jax.random.key(0), batch, train=False), tx))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


# ============================================================================ the encoder's part

def encoder_variables(variables: dict) -> dict:
  """{"params", "batch_stats"?} of the shared encoder out of a task model's variables."""
  return {k: v["encoder"] for k, v in variables.items() if hasattr(v, "keys") and "encoder" in v}


def encoder_info(c: ml_collections.ConfigDict, task: tasks.Task, variables: dict) -> dict:
  """Params and FLOPs of the encoder alone (the part every task shares)."""
  info = encoder_lib.describe(encoder_lib.from_config(c.encoder), encoder_variables(variables),
                              (task.frontend.slice_frames, task.frontend.n_mels))
  info["total_params"] = encoder_lib.count_params(variables["params"])
  return info
