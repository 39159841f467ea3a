r"""The encoder's filter gradients, per layer: XLA's convolution vs dot_general over shifted views.

Command:
  python bench/conv_grad.py [--quick] [--width 4] [--batch 64]

bench/step_profile.py finds the kernel gradients of the 3x1 / 1x3 convolutions to be
the largest cost of a train step on XLA:CPU. For each convolution of the encoder
(the shapes of ssl_audio/encoder.py at ``--width``, ``--batch`` slices), this times
d loss / d kernel two ways, jitted alone, interleaved, best of N:

* ``xla``: the VJP of ``lax.conv_general_dilated`` (what training uses today);
* ``taps``: one ``dot_general`` per tap, contracting batch x time x frequency of the
  tap's shifted (SAME-padded) view of the input with the output gradient.

Both give the same values (relative max difference checked < 1e-4). A per-layer win
need not survive inside the whole step (BENCHMARKS.md §0: it did not, within noise).
"""

from __future__ import annotations

import argparse

from common import emit, interleaved_best, log

import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio.encoder import Encoder


def _conv(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def dk_xla(x, g, ks):
  return jax.vjp(lambda k: _conv(x, k), jnp.zeros((*ks, x.shape[-1], g.shape[-1])))[1](g)[0]


def dk_taps(x, g, ks):
  axis = 1 if ks[0] == 3 else 2
  pad = [(0, 0)] * 4
  pad[axis] = (1, 1)
  xp, n = jnp.pad(x, pad), x.shape[axis]
  taps = [jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i in range(3)]
  dk = [jax.lax.dot_general(t, g, (((0, 1, 2), (0, 1, 2)), ((), ()))) for t in taps]
  return jnp.stack(dk).reshape(*ks, x.shape[-1], g.shape[-1])


def layers(width: float, frames: int = 96, mels: int = 64):
  """(name, time, freq, c_in, c_out, kernel shape) of every conv of the encoder."""
  cin, t, f = 1, frames, mels
  for i, c in enumerate(Encoder(width=width).block_channels()):
    yield f"block{i}.conv_time", t, f, cin, c, (3, 1)
    yield f"block{i}.conv_freq", t, f, c, c, (1, 3)
    cin, t, f = c, -(-t // 2), -(-f // 2)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="width 1, batch 32, 3 repeats")
  ap.add_argument("--width", type=float, default=4.0)
  ap.add_argument("--batch", type=int, default=64)
  args = ap.parse_args(argv)
  width, batch, repeats = (1.0, 32, 3) if args.quick else (args.width, args.batch, 5)
  rng = np.random.default_rng(0)
  rows = []
  for name, t, f, ci, co, ks in layers(width):
    x = jnp.asarray(rng.standard_normal((batch, t, f, ci), np.float32))
    g = jnp.asarray(rng.standard_normal((batch, t, f, co), np.float32))
    fns = {k: jax.jit(fn, static_argnums=2) for k, fn in (("xla", dk_xla), ("taps", dk_taps))}
    ref, got = fns["xla"](x, g, ks), fns["taps"](x, g, ks)
    err = float(jnp.max(jnp.abs(got - ref)) / jnp.max(jnp.abs(ref)))
    if err > 1e-4:
      raise AssertionError(f"{name}: taps differ from XLA's gradient by {err:.1e}")
    best = interleaved_best({k: (lambda fn=fn: fn(x, g, ks).block_until_ready()) for k, fn in fns.items()},
                            repeats)
    rows.append({"layer": name, "input": [batch, t, f, ci], "c_out": co, "xla_ms": best["xla"] * 1e3,
                 "taps_ms": best["taps"] * 1e3, "xla_over_taps": best["xla"] / best["taps"], "rel_err": err})
    log(f"conv_grad: {name} [{batch},{t},{f},{ci}]->{co}: xla {best['xla'] * 1e3:.2f} ms, "
        f"taps {best['taps'] * 1e3:.2f} ms ({best['xla'] / best['taps']:.2f}x)")
  emit("conv_grad", {"width": width, "batch": batch, "repeats": repeats, "layers": rows,
                     "xla_ms_total": sum(r["xla_ms"] for r in rows),
                     "best_per_layer_ms_total": sum(min(r["xla_ms"], r["taps_ms"]) for r in rows)}, argv)


if __name__ == "__main__":
  main()
