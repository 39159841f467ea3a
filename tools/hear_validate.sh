#!/usr/bin/env bash
# The real HEAR 2021 tools on a pretraining workdir, through ssl_audio.hear_torch:
#   1. hearvalidator (hear-validator) checks the module;
#   2. `python -m data.suite export-hear TASK` writes a suite task in HEAR's task format;
#   3. heareval's embedding runner writes the embeddings of that task.
# The tools import TensorFlow and heareval pins numpy 1.19 / numba 0.48 (no wheels for
# Python 3.11), so they live in a separate, throw-away virtualenv ($HEAR_VENV), with heareval
# installed --no-deps beside what it imports. Nothing here becomes a project dependency.
#
#   tools/hear_validate.sh WORKDIR [TASK] [MAX_CLIPS]      # e.g. runs/cola instrument 40
#   HEAR_VENV=/path/to/venv  (default ~/.cache/ssl_audio/hear-venv; created when missing)
#   PIP_CONSTRAINTS=/path/constraints.txt  (optional: pins for the venv's pip installs)
#   HEAR_OUT=/path  (default: a new temporary folder) for tasks/ and embeddings/
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORKDIR=${1:?usage: tools/hear_validate.sh WORKDIR [TASK] [MAX_CLIPS]}
TASK=${2:-instrument}
MAX_CLIPS=${3:-40}
VENV=${HEAR_VENV:-$HOME/.cache/ssl_audio/hear-venv}
OUT=${HEAR_OUT:-$(mktemp -d)}

if [ ! -x "$VENV/bin/hear-validator" ]; then
  echo "== creating $VENV (the HEAR tools: torch, tensorflow-cpu, hearvalidator, heareval)"
  PY=${PYTHON:-python3.11}
  command -v "$PY" >/dev/null || PY=python3
  "$PY" -m venv "$VENV"
  C=()
  [ -n "${PIP_CONSTRAINTS:-}" ] && C=(-c "$PIP_CONSTRAINTS")
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r requirements-hear.txt "${C[@]}" tensorflow-cpu hearvalidator \
      click python-slugify intervaltree            # what heareval's embedding runner imports
  "$VENV/bin/pip" install -q --no-deps heareval==2021.1.3
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2
PY="$VENV/bin/python"

echo "== hear-validator ssl_audio.hear_torch -m $WORKDIR -d cpu"
"$VENV/bin/hear-validator" ssl_audio.hear_torch -m "$WORKDIR" -d cpu

echo "== python -m data.suite export-hear $TASK $OUT/tasks --max-clips $MAX_CLIPS"
"$PY" -m data.suite export-hear "$TASK" "$OUT/tasks" --max-clips "$MAX_CLIPS"

echo "== python -m heareval.embeddings.runner ssl_audio.hear_torch --model $WORKDIR --tasks-dir $OUT/tasks --embeddings-dir $OUT/embeddings"
"$PY" -m heareval.embeddings.runner ssl_audio.hear_torch --model "$WORKDIR" \
    --tasks-dir "$OUT/tasks" --embeddings-dir "$OUT/embeddings"

echo "== embeddings written by heareval"
"$PY" - "$OUT/embeddings" <<'EOF'
import json, sys
from pathlib import Path
for task in sorted(Path(sys.argv[1]).glob("*/*")):
    for split in ("train", "valid", "test"):
        n, d = json.loads((task / f"{split}.embedding-dimensions.json").read_text())
        print(f"{task.relative_to(sys.argv[1])} {split}: {n} x {d}  ({split}.embeddings.npy)")
    print("done marker:", (task / ".done.embeddings").exists())
EOF
echo "HEAR_OUT=$OUT"
