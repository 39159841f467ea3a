r"""Batch-1 latency of exported .tflite models in ai-edge-litert (XNNPACK, 1 thread).

Command:
  python bench/tflite_latency.py --models=w1.tflite,w4.tflite,w1_int8.tflite \
      [--runs=500] [--warmup=50] [--threads=1] [--out=latency.json]

Each model is a file of ``python -m ssl_audio.export`` with its ``.json`` beside it
(parameters, FLOPs per slice and checkpoint come from there). Per model: the
``serving_default`` signature (batch 1, static shapes) on one fixed input of the
model's shape (a 440-Hz tone plus noise for a waveform model, its log-mel for a
log-mel one), ``--warmup`` calls, then ``--runs`` calls timed one by one; reported:
median, 10th and 90th percentile, mean (ms), the file's bytes, params and FLOPs
per slice (the encoder's, by XLA's cost analysis at export time; the front-end's
FFT and mel matmul are not counted). The interpreter's default delegate on CPU is
XNNPACK (it logs "Created TensorFlow Lite XNNPACK delegate"). The models are timed
round-robin, one call each in turn, so load drifts hit all alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import common


def example_input(shape, kind: str, sample_rate: int = 16000) -> np.ndarray:
  rng = np.random.default_rng(0)
  if kind == "waveform":
    t = np.arange(shape[-1]) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(shape[-1])
    return x.reshape(shape).astype(np.float32)
  return rng.normal(-6.5, 2.0, shape).astype(np.float32)   # log-mel level of real audio


def load(path: str, threads: int):
  from ai_edge_litert.interpreter import Interpreter
  meta_path = Path(path + ".json")
  meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
  interp = Interpreter(model_path=path, num_threads=threads)
  sig = interp.get_signature_list()["serving_default"]
  runner = interp.get_signature_runner("serving_default")
  detail = runner.get_input_details()[sig["inputs"][0]]
  x = example_input(tuple(detail["shape"]), meta.get("input", "waveform"),
                    meta.get("sample_rate", 16000))
  return meta, sig["inputs"][0], runner, x


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", required=True, help="comma-separated .tflite files")
  ap.add_argument("--runs", type=int, default=500)
  ap.add_argument("--warmup", type=int, default=50)
  ap.add_argument("--threads", type=int, default=1)
  ap.add_argument("--out", default="", help="write the results as JSON here too")
  args = ap.parse_args(argv)
  paths = [p.strip() for p in args.models.split(",") if p.strip()]
  for p in paths:
    if not Path(p).is_file():
      raise SystemExit(f"--models: {p} is not a file")
  models = {p: load(p, args.threads) for p in paths}
  calls = {p: (lambda r=runner, n=name, x=x: r(**{n: x})) for p, (_, name, runner, x) in models.items()}
  for _ in range(args.warmup):
    for fn in calls.values():
      fn()
  times = {p: [] for p in paths}
  for _ in range(args.runs):
    for p, fn in calls.items():
      t = time.perf_counter()
      fn()
      times[p].append((time.perf_counter() - t) * 1e3)
  rows = []
  for p in paths:
    meta = models[p][0]
    ms = np.asarray(times[p])
    ck = meta.get("checkpoint", {})
    rows.append({"model": p, "bytes": Path(p).stat().st_size, "quantize": meta.get("quantize"),
                 "input": meta.get("input"), "checkpoint": ck.get("workdir"), "step": ck.get("step"),
                 "task": ck.get("task"), "width": ck.get("width"), "params": ck.get("params"),
                 "flops_per_slice": ck.get("flops_per_slice"),
                 "median_ms": float(statistics.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
                 "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean()),
                 "runs": args.runs, "threads": args.threads})
    common.log(f"{p}: median {rows[-1]['median_ms']:.3f} ms, {rows[-1]['bytes']:,} bytes")
  if args.out:
    Path(args.out).write_text(json.dumps({"machine": common.machine(), "models": rows}, indent=2))
  common.emit("tflite_latency", {"models": rows}, argv)


if __name__ == "__main__":
  main()
