"""Writes a manifest (``ssl_audio.manifest`` format) for a public dataset kept on disk.

Usage::

  python -m data.prepare DATASET --root=PATH --out=MANIFEST.csv [--check-audio] [options]
  python -m data.prepare --list

Datasets and their expected layouts: data/ADAPTERS.md. Files that the dataset's metadata names but
that are not on disk (and, with --check-audio, files soundfile cannot open) are left out, counted and
reported in a summary line; they never stop the run. Paths are written relative to the manifest's
folder when the file lies below it, else absolute (--absolute: always absolute).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import soundfile as sf

from ssl_audio.manifest import write_manifest

from data.adapters import (audioset, bird_audio_detection, folder, librispeech, musan, nsynth,
                           speech_commands, spoken_language_id, tut_scenes, voxceleb1)
from data.adapters.common import AdapterError, Report

Adapter = Callable[..., list]

REGISTRY: dict[str, Adapter] = {
    "audioset": audioset.adapt,
    "librispeech": librispeech.adapt,
    "speech_commands_v1": speech_commands.adapt_v1,
    "speech_commands_v2": speech_commands.adapt_v2,
    "musan": musan.adapt,
    "nsynth": nsynth.adapt,
    "tut_scenes_2018": tut_scenes.adapt,
    "bird_audio_detection": bird_audio_detection.adapt,
    "spoken_language_id": spoken_language_id.adapt,
    "voxceleb1": voxceleb1.adapt,
    "folder": folder.adapt,
}

# CLI flag -> adapter keyword (only adapters that take the keyword accept the flag).
OPTIONS = ("variant", "subset", "split_by", "heldout", "test_dir", "valid_fraction",
           "speaker_pattern", "full_videos", "audio_dir")


def adapter_options(name: str) -> list[str]:
  params = inspect.signature(REGISTRY[name]).parameters
  return [p for p in params if p not in ("root", "report")]


def manifest_path(path: str, base: Path, absolute: bool = False) -> str:
  """``path`` relative to ``base`` when it lies below it (and not ``absolute``), else absolute."""
  p = os.path.abspath(path)
  b = os.path.abspath(base)
  if not absolute:
    try:
      if os.path.commonpath([p, b]) == b:
        return Path(os.path.relpath(p, b)).as_posix()
    except ValueError:  # different drives
      pass
  return p


def check_rows(rows: list[dict], report: Report, check_audio: bool = False) -> list[dict]:
  """Drops rows whose file is absent (and, with check_audio, unreadable); fills ``duration``."""
  status: dict[str, object] = {}
  kept = []
  for r in rows:
    p = r["path"]
    if p not in status:
      if not os.path.isfile(p):
        status[p] = "missing"
        report.add_missing(p)
      elif check_audio:
        try:
          info = sf.info(p)
          if info.frames <= 0 or info.samplerate <= 0:
            raise ValueError("no audio frames")
          status[p] = info.frames / info.samplerate
        except Exception as e:  # noqa: BLE001 - any decoding failure is counted
          status[p] = "unreadable"
          msg = str(e).strip().splitlines()
          report.add_unreadable(p, msg[0] if msg else type(e).__name__)
      else:
        status[p] = None
    st = status[p]
    if st in ("missing", "unreadable"):
      continue
    if isinstance(st, float) and not r.get("duration"):
      start, end = r.get("start"), r.get("end")
      if start not in (None, "") and end not in (None, ""):
        r["duration"] = f"{float(end) - float(start):.3f}"
      else:
        r["duration"] = f"{st:.3f}"
    kept.append(r)
  return kept


def prepare(dataset: str, root: str | os.PathLike, out: str | os.PathLike, check_audio: bool = False,
            absolute: bool = False, **options) -> tuple[Path | None, list[dict], Report]:
  """Runs the adapter, checks files, writes the manifest. Returns (path or None, rows, report).

  Raises:
    KeyError: unknown dataset.
    AdapterError: nothing usable under root, or an option the adapter does not take.
  """
  if dataset not in REGISTRY:
    raise KeyError(f"unknown dataset {dataset!r}; known: {sorted(REGISTRY)}")
  options = {k: v for k, v in options.items() if v is not None and v is not False}
  bad = set(options) - set(adapter_options(dataset))
  if bad:
    raise AdapterError(f"{dataset}: option(s) {sorted(bad)} not supported "
                       f"(supported: {adapter_options(dataset) or 'none'})")
  root = Path(root).expanduser()
  if not root.is_dir():
    raise AdapterError(f"{dataset}: root {root} is not a folder")
  report = Report(dataset)
  rows = REGISTRY[dataset](root, report, **options)
  rows = check_rows(rows, report, check_audio)
  out = Path(out).expanduser()
  if not rows:
    return None, rows, report
  base = out.parent if str(out.parent) else Path(".")
  for r in rows:
    r["path"] = manifest_path(r["path"], base, absolute)
  return write_manifest(out, rows), rows, report


def build_parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(prog="python -m data.prepare", description=__doc__.split("\n\n")[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog="Layouts: data/ADAPTERS.md")
  ap.add_argument("dataset", nargs="?", choices=sorted(REGISTRY), help="dataset adapter")
  ap.add_argument("--root", help="folder holding the dataset as distributed")
  ap.add_argument("--out", help="manifest CSV to write")
  ap.add_argument("--check-audio", action="store_true",
                  help="open every file with soundfile.info; unreadable ones are counted and left out; "
                       "fills the duration column")
  ap.add_argument("--absolute", action="store_true", help="write absolute paths")
  ap.add_argument("--list", action="store_true", help="list datasets and their options")
  ap.add_argument("--variant", help="speech_commands_v1/v2: full (default) or 12; "
                                    "spoken_language_id: all (default) or original")
  ap.add_argument("--subset", help="librispeech: subset folder (default train-clean-100); "
                                   "audioset: comma list of balanced_train,unbalanced_train,eval")
  ap.add_argument("--split-by", dest="split_by",
                  help="librispeech: utterance (default) or chapter; musan: subset (default) or file")
  ap.add_argument("--heldout", help="bird_audio_detection: datasetid used as the test split")
  ap.add_argument("--test-dir", dest="test_dir",
                  help="speech_commands_v1/v2: official separate test set folder")
  ap.add_argument("--valid-fraction", dest="valid_fraction", type=float,
                  help="tut_scenes_2018: fraction of train locations moved to valid")
  ap.add_argument("--speaker-pattern", dest="speaker_pattern",
                  help="folder: regex on the file name; group 'speaker' (or group 1) is the speaker")
  ap.add_argument("--full-videos", dest="full_videos", action="store_true",
                  help="audioset: clips are whole videos; write segment times to start/end")
  ap.add_argument("--audio-dir", dest="audio_dir", help="audioset: clip folder (default: root)")
  return ap


def main(argv: Sequence[str] | None = None) -> int:
  ap = build_parser()
  args = ap.parse_args(argv)
  if args.list:
    for name in sorted(REGISTRY):
      print(f"{name}: options {', '.join(adapter_options(name)) or '-'}")
    return 0
  if not args.dataset or not args.root or not args.out:
    ap.error("DATASET, --root and --out are required")
  options = {k: getattr(args, k) for k in OPTIONS}
  try:
    path, rows, report = prepare(args.dataset, args.root, args.out, check_audio=args.check_audio,
                                 absolute=args.absolute, **options)
  except (AdapterError, KeyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for line in report.details():
    print(line)
  print(report.summary(rows) + (f"; wrote {path}" if path else "; nothing written"))
  return 0 if path else 1


if __name__ == "__main__":
  sys.exit(main())
