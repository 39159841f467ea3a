"""VoxCeleb1 speaker identification (1,251 speakers).

Layout: ``wav/<id1xxxx>/<youtube id>/<NNNNN>.wav`` (the dev and test archives may be unpacked into one
``wav/`` or kept as ``vox1_dev_wav/wav`` + ``vox1_test_wav/wav``: every folder named ``wav`` below root
is searched) and ``iden_split.txt`` (lines ``1 id10001/1zcIwhmdeo4/00001.wav``; 1 = train, 2 = valid,
3 = test). Optional ``vox1_meta.csv`` (tab-separated ID, VGGFace1 ID, Gender, Nationality, Set) adds
gender and nationality.

Label = speaker = the id; source = the YouTube video id. Lines of iden_split.txt whose wav is absent are
counted as missing. Without iden_split.txt every wav found is used and split by sha1 of the video id
(70/10/20: video-disjoint, so every speaker is not guaranteed to be in each split).
"""

from __future__ import annotations

from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, read_lines, walk_files
from ssl_audio.manifest import split_of

NAME = "voxceleb1"
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}


def read_meta(path: Path) -> dict[str, tuple[str, str]]:
  out = {}
  for ln in read_lines(path)[1:]:
    rec = [f.strip() for f in ln.split("\t")]
    if len(rec) >= 4 and rec[0].startswith("id"):
      out[rec[0]] = (rec[2].lower(), rec[3])
  return out


def adapt(root: Path, report: Report | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  wav_roots = find_paths(root, ["wav"], max_depth=3, want_dir=True)
  if not wav_roots and any(d.name.startswith("id") for d in root.iterdir() if d.is_dir()):
    wav_roots = [root]
  if not wav_roots:
    raise AdapterError(f"voxceleb1: no wav/ folder (wav/<id>/<video>/<n>.wav) under {root}")
  meta_files = find_paths(root, ["vox1_meta.csv"], max_depth=3, want_dir=False)
  meta = read_meta(meta_files[0]) if meta_files else {}
  split_files = find_paths(root, ["iden_split.txt"], max_depth=3, want_dir=False)
  entries: list[tuple[str, str, Path]] = []  # (rel, split, path)
  if split_files:
    for ln in read_lines(split_files[0]):
      rec = ln.split()
      if len(rec) != 2 or rec[0] not in SPLIT_CODES:
        continue
      rel = rec[1].replace("\\", "/")
      path = next((w / rel for w in wav_roots if (w / rel).is_file()), None)
      if path is None:
        report.add_missing(rel)
        continue
      entries.append((rel, SPLIT_CODES[rec[0]], path))
  else:
    report.note("iden_split.txt not found: split by sha1 of the YouTube video id")
    for w in wav_roots:
      for p in walk_files(w, exts=(".wav",)):
        rel = p.relative_to(w).as_posix()
        if rel.count("/") != 2:
          continue
        spk, vid, _ = rel.split("/")
        entries.append((rel, split_of(f"{spk}/{vid}"), p))
  rows = []
  for rel, split, path in entries:
    spk, vid = rel.split("/")[:2]
    row = {"path": str(path), "label": spk, "split": split, "speaker": spk, "source": vid}
    if meta:
      gender, nationality = meta.get(spk, ("", ""))
      row["gender"], row["nationality"] = gender, nationality
    rows.append(row)
  if not rows and not report.missing:
    raise AdapterError(f"voxceleb1: no wav files under {[str(w) for w in wav_roots]}")
  return rows
