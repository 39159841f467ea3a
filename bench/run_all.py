r"""Runs every bench script in a subprocess and collects their JSON summaries.

Command:
  python bench/run_all.py [--quick] [--only frontend,train_step] [--out bench/results.json]

Each script prints a one-line JSON summary as its last stdout line; this script
runs them one after another (never two at once: they time the same CPU), prints
one line per script and, last, one JSON line {"machine", "quick", "results": {name:
summary}, "failed": {name: reason}, "seconds": {name: wall}}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import REPO, log, machine  # noqa: E402

SCRIPTS = ("frontend", "train_step", "extract", "step_profile", "conv_grad", "maxpool", "input_pipeline",
           "real_run", "evaluation", "scale")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(SCRIPTS))
  ap.add_argument("--out", default="", help="also write the collected JSON here")
  ap.add_argument("--timeout", type=float, default=3600, help="seconds per script")
  args = ap.parse_args(argv)
  names = [n for n in args.only.split(",") if n] or list(SCRIPTS)
  results, failed, seconds = {}, {}, {}
  for name in names:
    script = HERE / f"{name}.py"
    if not script.is_file():
      failed[name] = "no such script"
      continue
    cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
    log(f"run_all: {' '.join(cmd)}")
    t = time.perf_counter()
    try:
      # stderr (progress lines) passes through; stdout is parsed.
      p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=str(REPO), timeout=args.timeout)
    except subprocess.TimeoutExpired:
      failed[name] = f"timeout after {args.timeout:.0f} s"
      continue
    seconds[name] = round(time.perf_counter() - t, 1)
    lines = p.stdout.strip().splitlines()
    try:
      results[name] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
      failed[name] = f"rc {p.returncode}: no JSON summary on stdout (see its stderr above)"
      continue
    summary = {k: v for k, v in results[name].items()
               if k not in ("machine", "results", "pipeline", "config", "command")
               and not isinstance(v, (dict, list))}
    print(f"{name} ({seconds[name]} s): {json.dumps(summary)}", flush=True)
  out = {"machine": machine(), "quick": args.quick, "results": results, "failed": failed,
         "seconds": seconds}
  if args.out:
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
  print(json.dumps(out), flush=True)


if __name__ == "__main__":
  main()
