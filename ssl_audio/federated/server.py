"""The server: averaging client uploads and the server optimizer.

FedAvg: the mean of the uploads weighted by each client's number of clips, applied
with SGD at learning rate 1 (the new weights are the weighted mean of the clients').
FedAdam (Reddi et al. 2021): the same mean fed to Adam as a negative gradient.
BatchNorm statistics (``batchnorm="average"``) are averaged too and simply added,
never through the optimizer: they are not gradients.
DP-FedAvg: the uploads are clipped by the clients; the server sums them, adds
N(0, (z·C)²) and divides by the expected cohort size (``dp.py``).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ssl_audio.federated import dp


@flax.struct.dataclass
class ServerState:
  """What the server keeps besides the model (saved as the checkpoint's ``server`` item)."""
  opt_state: Any            # the server optimizer's state
  rng: jax.Array            # uint32 key data: the DP noise of the next round
  client_stats: Any         # batchnorm="local": every client's statistics, stacked; else {}


def server_optimizer(f: ml_collections.ConfigDict) -> optax.GradientTransformation:
  if f.server_optimizer == "adam":
    return optax.adam(f.server_learning_rate, b1=0.9, b2=0.99, eps=1e-3)   # Reddi et al.'s τ
  return optax.sgd(f.server_learning_rate, momentum=f.server_momentum or None)


def zeros_like(upload):
  return jax.tree.map(jnp.zeros_like, upload)


@jax.jit
def accumulate(total, upload, weight):
  """total + weight * upload (one client at a time)."""
  return jax.tree.map(lambda t, u: t + weight * u, total, upload)


@jax.jit
def accumulate_stacked(total, uploads, weights):
  """total + Σ_k weights[k] * uploads[k] over a leading client axis (vmapped cohorts)."""
  return jax.tree.map(lambda t, u: t + jnp.tensordot(weights, u, axes=1), total, uploads)


def mean_update(total, weight_sum, dp_noise: tuple | None = None):
  """The aggregate: total / weight_sum; with ``dp_noise=(key, stddev, cohort)``,
  (total + N(0, stddev²)) / cohort."""
  if dp_noise is None:
    return jax.tree.map(lambda t: t / jnp.maximum(weight_sum, 1e-30), total)
  key, stddev, cohort = dp_noise
  return jax.tree.map(lambda t: t / cohort, dp.add_noise(total, key, stddev))


def make_apply(tx: optax.GradientTransformation):
  """jitted (params, batch_stats, opt_state, update) -> (params, batch_stats, opt_state)."""

  @jax.jit
  def apply(params, batch_stats, opt_state, update):
    grads = jax.tree.map(jnp.negative, update["params"])   # optax minimises
    steps, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, steps)
    if "batch_stats" in update:
      batch_stats = jax.tree.map(jnp.add, batch_stats, update["batch_stats"])
    return params, batch_stats, opt_state

  return apply


def tree_bytes(tree) -> int:
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))
