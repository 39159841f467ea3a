r"""The training max-pool: ssl_audio.encoder.max_pool_2x2 (custom VJP) vs nn.max_pool (select_and_scatter).

Command:
  python bench/maxpool.py [--quick] [--width 1] [--batch 128]

The encoder alone, jitted train step (train-mode forward with BatchNorm, loss
mean(y^2), grad, Adam), once with the encoder as it is and once with its
training pool replaced by ``nn.max_pool(x, (2, 2), (2, 2), "SAME")``, timed
round-robin, best of N. Also checks the two give the same outputs, BatchNorm
statistics and gradients (max |delta|).
"""

from __future__ import annotations

import argparse
import time

from common import emit, log

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from ssl_audio import encoder as E


def build(width: float, batch: int, reference: bool):
  orig = E.max_pool_2x2
  if reference:
    E.max_pool_2x2 = lambda x: nn.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")
  try:
    enc = E.Encoder(width=width)
    x = jax.random.normal(jax.random.key(1), (batch, 96, 64))
    v = enc.init(jax.random.key(0), x)
    tx = optax.adam(1e-3)

    def loss(p, bs):
      y, m = enc.apply({"params": p, "batch_stats": bs}, x, train=True, mutable=["batch_stats"])
      return jnp.mean(y ** 2), (y, m["batch_stats"])

    def step(p, o, bs):
      (_, (y, bs)), g = jax.value_and_grad(loss, has_aux=True)(p, bs)
      u, o = tx.update(g, o, p)
      return optax.apply_updates(p, u), o, bs, y, g

    args = (v["params"], tx.init(v["params"]), v["batch_stats"])
    c = jax.jit(step).lower(*args).compile()   # traced now, while the pool is patched
  finally:
    E.max_pool_2x2 = orig
  out = c(*args)
  return (lambda: jax.block_until_ready(c(*args))), out


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--width", type=float, default=1.0)
  ap.add_argument("--batch", type=int, default=128)
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args(argv)
  if args.quick:
    args.batch, args.repeats = 32, 3
  run_new, out_new = build(args.width, args.batch, reference=False)
  run_ref, out_ref = build(args.width, args.batch, reference=True)
  diff = lambda a, b: max(float(jnp.abs(p - q).max()) for p, q in
                          zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  best = {"custom_vjp": float("inf"), "nn_max_pool": float("inf")}
  for _ in range(args.repeats):
    for k, f in (("custom_vjp", run_new), ("nn_max_pool", run_ref)):
      t = time.perf_counter()
      f()
      best[k] = min(best[k], time.perf_counter() - t)
  figs = {"width": args.width, "batch": args.batch, "repeats": args.repeats,
          "custom_vjp_s_per_step": best["custom_vjp"], "nn_max_pool_s_per_step": best["nn_max_pool"],
          "speedup": best["nn_max_pool"] / best["custom_vjp"],
          "max_abs_d_output": diff(out_new[3], out_ref[3]),
          "max_abs_d_batch_stats": diff(out_new[2], out_ref[2]),
          "max_abs_d_grads": diff(out_new[4], out_ref[4])}
  log(f"maxpool: {figs}")
  emit("maxpool", figs, argv)


if __name__ == "__main__":
  main()
