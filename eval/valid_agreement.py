r"""Does a valid split predict test? Pearson r between the valid and the test accuracy of
many scored models, per task and for the average over tasks, from the ``<task>.json``
files ``eval.linear_eval`` wrote (one folder per model and protocol).

  python -m eval.valid_agreement --evals="runs/a/eval,runs/b/eval,runs/a/eval/untrained/seed*"
  python -m eval.valid_agreement --evals="runs/*/eval/vgroup" --tasks=language,msn

A recipe is chosen on valid numbers; a task whose valid accuracy does not track its test
accuracy across models (r near 0 or below) cannot choose one. Folders are globbed; one
without a task's JSON is left out of that task (and of the average).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np

TASKS = ("digits", "language", "msn", "instrument")


def load(folders: list[str], tasks=TASKS) -> dict[str, dict[str, tuple[float, float]]]:
  """{folder: {task: (valid %, test %)}} for every folder with at least one task."""
  out = {}
  for f in folders:
    got = {}
    for t in tasks:
      p = Path(f) / f"{t}.json"
      if p.exists():
        r = json.loads(p.read_text())
        lp = r.get("linear_probe") or r
        got[t] = (100 * lp["valid_accuracy"]["mean"], 100 * r["accuracy"]["mean"])
    if got:
      out[f] = got
  return out


def agreement(scores: dict[str, dict[str, tuple[float, float]]], tasks=TASKS) -> list[dict]:
  """One row per task and one for the mean over tasks (models with every task):
  n, mean valid, mean test, Pearson r (nan with fewer than 3 models or no spread)."""
  rows = []
  for t in list(tasks) + ["mean"]:
    if t == "mean":
      full = [s for s in scores.values() if all(x in s for x in tasks)]
      pairs = [(np.mean([s[x][0] for x in tasks]), np.mean([s[x][1] for x in tasks])) for s in full]
    else:
      pairs = [s[t] for s in scores.values() if t in s]
    v, te = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    ok = len(pairs) >= 3 and v.std() > 0 and te.std() > 0
    rows.append({"task": t, "n": len(pairs), "valid": float(v.mean()) if len(v) else float("nan"),
                 "test": float(te.mean()) if len(te) else float("nan"),
                 "r": float(np.corrcoef(v, te)[0, 1]) if ok else float("nan")})
  return rows


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--evals", required=True, help="eval folders (globs), comma-separated")
  ap.add_argument("--tasks", default=",".join(TASKS))
  a = ap.parse_args(argv)
  folders = sorted({g for pat in a.evals.split(",") if pat.strip() for g in glob.glob(pat.strip())})
  tasks = tuple(t.strip() for t in a.tasks.split(",") if t.strip())
  scores = load(folders, tasks)
  if not scores:
    print(f"no <task>.json under {a.evals}", file=sys.stderr)
    return 1
  print(f"{len(scores)} models\n\n| task | models | valid mean | test mean | r(valid, test) |\n|---|---|---|---|---|")
  for r in agreement(scores, tasks):
    print(f"| {r['task']} | {r['n']} | {r['valid']:.1f} | {r['test']:.1f} | {r['r']:+.2f} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
