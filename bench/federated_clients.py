r"""Federated client work per round: clients one after another vs vmapped in one call.

Command:
  python bench/federated_clients.py [--clients 4] [--local_steps 2] [--batch 8] [--width 1]

The real client update (``ssl_audio.federated.client``: TemporalGap's model and loss,
``local_steps`` Adam steps under ``lax.scan``) on fixed in-memory batches of
``--clients`` clients, plus the weighted sum of the uploads: what a round costs without
data loading. Sequential: one jitted call per client; vmap: one call for the cohort.
Compiled once each, then ``--repeats`` rounds interleaved, best kept.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import REPO, emit, interleaved_best, log


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--clients", type=int, default=4)
  ap.add_argument("--local_steps", type=int, default=2)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--width", type=float, default=1.0)
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args()

  import importlib.util
  import jax
  import jax.numpy as jnp
  from ssl_audio import parallel, state as state_lib
  from ssl_audio.federated import config as fconfig, server as server_lib
  from ssl_audio.federated.client import make_client_update

  spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "federated_temporal_gap.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config()
  c.encoder.width = args.width
  c.task.window_seconds = 4.0
  c = fconfig.client_config(c)
  task = state_lib.build_task(c)
  model = state_lib.build_model(task)
  state, tx, schedule = state_lib.create_train_state(c, task, model)
  mesh = parallel.make_mesh(1)
  one = task.example_batch(args.batch)
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(args.clients):
    b = {k: np.stack([v] * args.local_steps) for k, v in one.items()}
    b["audio"] = rng.integers(-3000, 3000, b["audio"].shape).astype(np.int16)
    batches.append(b)
  keys = [np.asarray(jax.random.key_data(jax.random.key(k))) for k in range(args.clients)]
  w = jnp.ones(args.clients, jnp.float32)
  seq = make_client_update(model, task, tx, schedule, mesh, "average")
  vm = make_client_update(model, task, tx, schedule, mesh, "average", vmap=True)
  stacked = jax.tree.map(lambda *x: np.stack(x), *batches)
  stacked_keys = np.stack(keys)
  variables = state.variables()
  template = {"params": state.params, "batch_stats": state.batch_stats}

  def run_seq():
    total = server_lib.zeros_like(template)
    for b, k in zip(batches, keys):
      up, _, _ = seq(variables, b, k)
      total = server_lib.accumulate(total, up, jnp.float32(1.0))
    jax.block_until_ready(total)

  def run_vmap():
    up, _, _ = vm(variables, stacked, stacked_keys)
    jax.block_until_ready(server_lib.accumulate_stacked(server_lib.zeros_like(template), up, w))

  compile_s = {}
  for name, fn in (("sequential", run_seq), ("vmap", run_vmap)):
    t = time.perf_counter()
    fn()
    compile_s[name] = time.perf_counter() - t
    log(f"{name}: first round (compile) {compile_s[name]:.1f} s")
  best = interleaved_best({"sequential": run_seq, "vmap": run_vmap}, args.repeats)
  for k, v in best.items():
    log(f"{k}: {v:.3f} s per round")
  emit("federated_clients", {
      "clients": args.clients, "local_steps": args.local_steps, "batch": args.batch,
      "width": args.width, "s_per_round": best, "first_round_s": compile_s,
      "vmap_speedup": best["sequential"] / best["vmap"]})


if __name__ == "__main__":
  main()
