r"""Embedding extraction, the evaluation's hot loop: JAX vs PyTorch eager, slices/s.

Command:
  python bench/extract.py [--quick] [--widths 1,4] [--batch 256] [--torch-device cpu|cuda]

JAX: ``ssl_audio.embed.make_embed_fn`` (the function eval, notebooks and HEAR use:
jit + shard_map, log-mel included) on a fixed batch of raw int16 slices, the encoder
in inference mode (running BatchNorm statistics). PyTorch: bench/torch_reference.py's
front-end + encoder of the same shape, ``eval()`` and ``no_grad``, 2 threads on the
CPU. Interleaved rounds, best kept; the JAX/torch ratio is slices/s over slices/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import emit, interleaved_best, log

import jax


def jax_fn(width: float, batch: int):
  from ssl_audio import embed, encoder as encoder_lib, frontend as fe, parallel
  f = fe.FrontendConfig()
  enc = encoder_lib.Encoder(width=width)
  mesh = parallel.make_mesh(1)
  x = np.random.default_rng(0).integers(-3000, 3000, (batch, f.slice_samples)).astype(np.int16)
  variables = enc.init(jax.random.key(0), np.zeros((1, f.slice_frames, f.n_mels), np.float32))
  fn = embed.make_embed_fn(enc, f, mesh)
  xs = jax.device_put(x)
  jax.block_until_ready(fn(variables, xs))   # compile
  return (lambda: jax.block_until_ready(fn(variables, xs))), x, f


def torch_fn(width: float, x: np.ndarray, f, device: str):
  import torch
  import torch_reference as tr
  torch.set_num_threads(2)
  dev = torch.device(device)
  front, enc = tr.LogMel(f).to(dev), tr.Encoder(width).to(dev).eval()
  xt = torch.from_numpy(x).to(dev)
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

  @torch.no_grad()
  def run():
    enc(front(xt))
    sync()
  run()
  return run


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="width 1, batch 64, 2 repeats")
  ap.add_argument("--widths", default="1,4")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--number", type=int, default=2, help="calls per timed round")
  ap.add_argument("--torch-device", default="cpu")
  ap.add_argument("--no-torch", action="store_true")
  args = ap.parse_args(argv)
  if args.quick:
    args.widths, args.batch, args.repeats = "1", 64, 2
  rows = []
  for w in [float(v) for v in args.widths.split(",")]:
    t = time.perf_counter()
    run_jax, x, f = jax_fn(w, args.batch)
    fns = {"jax": run_jax}
    row = {"width": w, "batch": args.batch, "jax_setup_s": time.perf_counter() - t}
    if not args.no_torch:
      try:
        fns["torch"] = torch_fn(w, x, f, args.torch_device)
      except Exception as e:  # noqa: BLE001 (no torch, or no such device: keep the JAX row)
        log(f"extract: no torch reference ({type(e).__name__}: {e})")
    best = interleaved_best(fns, args.repeats, args.number)
    for k, s in best.items():
      row[f"{k}_slices_per_s"] = args.batch / s
    if "torch" in best:
      row["jax_vs_torch"] = best["torch"] / best["jax"]
    log("extract: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()))
    rows.append(row)
  ratios = [r["jax_vs_torch"] for r in rows if "jax_vs_torch" in r]
  emit("extract", {"batch": args.batch, "torch_device": args.torch_device,
                   "jax_device": str(jax.devices()[0].device_kind), "results": rows,
                   "min_jax_vs_torch": min(ratios) if ratios else None}, argv)


if __name__ == "__main__":
  main()
