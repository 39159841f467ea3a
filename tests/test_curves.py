"""eval.curves reads probe rows from metrics.jsonl and writes a figure and a table."""

import json

from eval import curves


def test_read_curves_and_outputs(tmp_path):
  rows = [{"step": 0, "digits/accuracy": 0.2, "digits/balanced_accuracy": 0.1},
          {"step": 25, "loss": 1.0},
          {"step": 250, "digits/accuracy": 0.3, "msn/accuracy": 0.8},
          {"step": 250, "digits/accuracy": 0.35}]   # a re-run of the step: the last one wins
  (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
  c = curves.read_curves(tmp_path)
  assert c == {"digits": [(0, 0.2), (250, 0.35)], "msn": [(250, 0.8)]}
  assert curves.read_curves(tmp_path, "balanced_accuracy") == {"digits": [(0, 0.1)]}
  md = curves.table({"run": c})
  assert "| run | 20.0 | 35.0 |" in md and "| run | 80.0 |" in md
  curves.plot({"run": c}, tmp_path / "c.png")
  assert (tmp_path / "c.png").stat().st_size > 1000
