r"""Recompute the per-method table (mean over pretraining seeds, Welch against the Untrained
inits) from comparison.md files that ``eval.linear_eval`` already wrote, without the
checkpoints: e.g. runs scored in different invocations, against an Untrained baseline
with more init seeds than they were scored with.

  python -m eval.seed_table --tables=docs/results/comparison_seeds5.md,docs/results/comparison_seeds5b.md \
      --untrained=docs/results/comparison_untrained10.md --rename="TemporalGap=TemporalGap s0"

Reads each file's test table (rows ``| name | step | mean ± hw | ... |``) and the
``Untrained per init seed`` table of ``--untrained`` (written since 2026-12-06). A run
named in several files must have the same numbers in each (the first is kept; a conflict
is an error). Run means are the tables' one-decimal values, so a result can differ from
one computed on the checkpoints by rounding (0.1 at most on a mean).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import argparse

_CELL = re.compile(r"^\s*(-?[0-9.]+)(?:\s*±\s*[0-9.]+)?\s*$")


def _rows(text: str, header_prefix: str, first_cells: int) -> tuple[list[str], dict[str, list[float]]]:
  """(columns, {row name: values}) of the first table whose header starts with
  ``header_prefix``; ``first_cells`` leading cells (name, step) are not values."""
  lines = text.splitlines()
  for i, l in enumerate(lines):
    if l.startswith(header_prefix):
      cols = [c.strip() for c in l.strip().strip("|").split("|")][first_cells:]
      rows = {}
      for r in lines[i + 2:]:
        if not r.startswith("|"):
          break
        cells = [c.strip() for c in r.strip().strip("|").split("|")]
        m = [_CELL.match(c) for c in cells[first_cells:]]
        if all(m):
          rows[cells[0]] = [float(x.group(1)) / 100 for x in m]
      return cols, rows
  raise ValueError(f"no table starting with {header_prefix!r}")


def read_runs(paths: list[str], rename: dict[str, str]) -> tuple[list[str], dict[str, list[float]]]:
  tasks, runs = None, {}
  for p in paths:
    cols, rows = _rows(Path(p).read_text(), "| model | step |", 2)
    if tasks is None:
      tasks = cols
    elif cols != tasks:
      raise ValueError(f"{p}: tasks {cols} differ from {tasks}")
    for name, vals in rows.items():
      name = rename.get(name, name)
      if name.startswith(("Untrained", "chance")):
        continue
      if name in runs and runs[name] != vals:
        raise ValueError(f"{p}: run {name!r} has {vals}, another table {runs[name]}")
      runs.setdefault(name, vals)
  return tasks or [], runs


def read_inits(path: str, tasks: list[str]) -> list[list[float]]:
  cols, rows = _rows(Path(path).read_text(), "| init |", 1)
  if cols != tasks:
    raise ValueError(f"{path}: init table tasks {cols} differ from {tasks}")
  return [v for n, v in rows.items() if n.startswith("Untrained init")]


def _result(acc: float) -> dict:
  return {"accuracy": {"mean": acc, "half_width": 0.0}}


def method_table(runs: dict[str, list[float]], inits: list[list[float]], tasks: list[str],
                 methods: list[str] = ()) -> list[str]:
  from eval import linear_eval
  models = {n: {t: _result(v) for t, v in zip(tasks, vals)} for n, vals in runs.items()}
  if methods:
    groups = linear_eval.seed_groups(list(models))
    models = {n: models[n] for m in methods for n in groups.get(m, [])}
  models["Untrained"] = {t: {"per_init": [{"accuracy": i[j]} for i in inits]}
                         for j, t in enumerate(tasks)}
  lines = linear_eval.method_table_lines(models, tasks, tasks)
  lines += ["", f"Untrained ({len(inits)} inits): " + " / ".join(
      f"{t} {100 * sum(c) / len(c):.1f}" for t, c in zip(tasks, zip(*inits)))]
  return lines


def main(argv=None):
  # argparse, not absl flags: eval.linear_eval (imported here) owns absl names such as --out.
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--tables", required=True, help="comparison.md files, comma-separated")
  ap.add_argument("--untrained", required=True, help="comparison.md with an 'Untrained per init seed' table")
  ap.add_argument("--rename", default="", help="old=new pairs, comma-separated (seed-0 rows without ' s0')")
  ap.add_argument("--methods", default="", help="only these methods, comma-separated (default: all with 2+ runs)")
  ap.add_argument("--inits", type=int, default=0, help="use the first N inits only (0: all)")
  ap.add_argument("--out", default="", help="also write the table to this markdown file")
  a = ap.parse_args(argv)
  rename = dict(p.split("=", 1) for p in a.rename.split(",") if "=" in p)
  tasks, runs = read_runs(a.tables.split(","), {k.strip(): v.strip() for k, v in rename.items()})
  inits = read_inits(a.untrained, tasks)[:a.inits or None]
  if len(inits) < 2:
    ap.error(f"{a.untrained}: fewer than 2 Untrained inits")
  methods = [m.strip() for m in a.methods.split(",") if m.strip()]
  text = "\n".join(method_table(runs, inits, tasks, methods)).strip() + "\n"
  sys.stdout.write(text)
  if a.out:
    Path(a.out).write_text(text)


if __name__ == "__main__":
  main()
