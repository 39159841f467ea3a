"""The client update: one pure, jitted function of the server's weights, a client's
batches and a key.

``update(variables, batches, key) -> (upload, local_stats, metrics)``

* ``variables``: the server's ``params`` (and ``batch_stats``: the server's when
  ``federated.batchnorm="average"``, the client's own when ``"local"``);
* ``batches``: ``{key: [local_steps, batch, ...]}``, this client's examples only;
* ``upload``: what the client sends back, the change of its weights
  ``{"params": Δ, "batch_stats": Δ}`` (statistics only when averaged), clipped to
  ``clip_norm`` for DP;
* ``local_stats``: the client's BatchNorm statistics after training (they stay on
  the client with ``batchnorm="local"``);
* ``metrics``: the task's metrics averaged over the local steps, plus the norm of
  the upload before clipping.

The local steps are the centralised trainer's own step body (``train.make_step_body``,
the task's model and loss, a fresh client optimizer per round) under ``lax.scan``.
It runs under ``shard_map`` so the tasks' collectives see the data axis: a client's
batch is split over the devices exactly like a centralised batch.
``vmap=True`` maps it over a leading client axis instead (one call per cohort chunk).

``unroll`` (``federated.unroll_local_steps``): the local steps as straight-line code
(default) or a ``lax.scan`` loop. XLA:CPU runs the loop's body about 10x slower (one
batch-16 step of width-1 TemporalGap: 0.9-1.3 s in the loop vs 0.09-0.10 s unrolled, as
the centralised step; 2-core CPU); unrolling costs compile time instead (10 local steps:
about 85 s vs 25 s).
On accelerators with many local steps the loop (False) may be the better trade.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from ssl_audio import parallel
from ssl_audio import train
from ssl_audio.federated import dp
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.state import TrainState


def client_body(model, task, tx: optax.GradientTransformation, schedule, batchnorm: str,
                clip_norm: float | None = None, unroll: bool = True):
  """The un-jitted per-device client update (see the module doc)."""
  step = train.make_step_body(model, task, tx, schedule)

  def update(variables, batches, key_data):
    key = jax.random.wrap_key_data(key_data)
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                       opt_state=tx.init(params))

    def one_step(s, xs):
      k, batch = xs
      return step(s, batch, jax.random.fold_in(key, k))

    local_steps = jax.tree.leaves(batches)[0].shape[0]
    if unroll:   # straight-line code (scan's unroll=True still emits a loop when length is 1)
      steps = []
      for k in range(local_steps):
        state, m = one_step(state, (k, jax.tree.map(lambda x: x[k], batches)))
        steps.append(m)
      metrics = jax.tree.map(lambda *x: jnp.stack(x), *steps)
    else:
      state, metrics = jax.lax.scan(one_step, state, (jnp.arange(local_steps), batches))
    upload = {"params": jax.tree.map(jnp.subtract, state.params, params)}
    if batchnorm == "average" and stats:
      upload["batch_stats"] = jax.tree.map(jnp.subtract, state.batch_stats, stats)
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["update_norm"] = optax.tree.norm(upload)
    if clip_norm:
      upload = dp.clip(upload, clip_norm)
    return upload, state.batch_stats, metrics

  return update


def make_client_update(model, task, tx, schedule, mesh, batchnorm: str = "average",
                       clip_norm: float | None = None, vmap: bool = False, unroll: bool = True):
  """jit(shard_map(client update)); with ``vmap`` every argument has a leading client
  axis (the server's params are shared: pass them unbatched). ``unroll``: see the
  module doc."""
  body = client_body(model, task, tx, schedule, batchnorm, clip_norm, unroll)
  if not vmap:
    return parallel.shard_step(body, mesh, in_specs=(P(), P(None, DATA_AXIS), P()),
                               out_specs=(P(), P(), P()))
  stats_axis = 0 if batchnorm == "local" else None

  def batched(variables, batches, key_data):
    axes = {k: (stats_axis if k == "batch_stats" else None) for k in variables}
    return jax.vmap(body, in_axes=(axes, 0, 0))(variables, batches, key_data)

  return parallel.shard_step(batched, mesh, in_specs=(P(), P(None, None, DATA_AXIS), P()),
                             out_specs=(P(), P(), P()))
