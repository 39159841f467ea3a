"""NSynth (instrument family; pitch as an extra column).

Layout: ``nsynth-{train,valid,test}/examples.json`` + ``nsynth-*/audio/<note_str>.wav``; note_str is
``<family>_<source>_<NNN>-<pitch>-<velocity>`` (e.g. ``synth_lead_synthetic_000-060-100``).

Label = instrument_family_str; speaker = instrument_str (the official splits are instrument-disjoint
between train and valid/test); source = instrument_source_str; split from the folder name; extra
columns pitch, velocity, instrument_source_str, qualities (';'-joined qualities_str). Entries of
examples.json without a wav are counted as missing. Without examples.json the fields come from the
file name.
"""

from __future__ import annotations

import json
from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, walk_files

NAME = "nsynth"
SPLIT_DIRS = {"nsynth-train": "train", "nsynth-valid": "valid", "nsynth-test": "test"}


def parse_note_str(note_str: str) -> dict:
  inst, pitch, vel = note_str.rsplit("-", 2)
  family, source, _ = inst.rsplit("_", 2)
  return {"instrument_str": inst, "pitch": int(pitch), "velocity": int(vel),
          "instrument_family_str": family, "instrument_source_str": source, "qualities_str": []}


def adapt(root: Path, report: Report | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  dirs = find_paths(root, list(SPLIT_DIRS), max_depth=3, want_dir=True)
  if not dirs:
    raise AdapterError(f"nsynth: no nsynth-train/, nsynth-valid/ or nsynth-test/ under {root}")
  rows = []
  for d in dirs:
    split = SPLIT_DIRS[d.name]
    audio = d / "audio"
    meta_file = d / "examples.json"
    if meta_file.is_file():
      with open(meta_file, encoding="utf-8") as f:
        meta = json.load(f)
      items = []
      for key, ex in meta.items():
        wav = audio / f"{ex.get('note_str', key)}.wav"
        if not wav.is_file():
          report.add_missing(f"{d.name}/audio/{wav.name}")
          continue
        items.append((wav, ex))
    else:
      report.note(f"{d.name}/examples.json not found: fields parsed from file names")
      items = []
      for wav in walk_files(audio if audio.is_dir() else d, exts=(".wav",)):
        try:
          items.append((wav, parse_note_str(wav.stem)))
        except ValueError:
          report.note(f"ignored {wav.name}: not <family>_<source>_<NNN>-<pitch>-<velocity>")
    for wav, ex in items:
      rows.append({
          "path": str(wav), "label": ex["instrument_family_str"], "split": split,
          "speaker": ex["instrument_str"], "source": ex["instrument_source_str"],
          "pitch": ex["pitch"], "velocity": ex["velocity"],
          "instrument_source_str": ex["instrument_source_str"],
          "qualities": ";".join(ex.get("qualities_str") or []),
      })
  return rows
