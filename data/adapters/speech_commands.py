"""Google Speech Commands v0.01 (30 words) and v0.02 (35 words).

Layout: ``<root>/<word>/<speakerhash>_nohash_<n>.wav``, ``validation_list.txt`` and ``testing_list.txt``
(paths ``word/file.wav``), ``_background_noise_/*.wav`` (long noise recordings).

Split: in testing_list -> test, in validation_list -> valid, else train (the official lists, which are
speaker-disjoint by construction: sha1 of the speaker hash). Speaker = the hash before ``_nohash_``.
``_background_noise_`` is excluded, except for the 12-class variant.

``variant="12"``: labels yes no up down left right on off stop go, every other word -> ``_unknown_``
(all of them kept: subsample in the loader if you want balance; ``word`` keeps the original word),
and ``_silence_`` = non-overlapping 1 s segments (start/end columns) of each background-noise file,
the first 80 % of each file's segments -> train, next 10 % -> valid, last 10 % -> test
(without speaker; source = the noise file). ``test_dir``: the official separate test set
(``speech_commands_test_set_v0.0x``: 12 folders incl. ``_unknown_``/``_silence_``) becomes the test split,
and the archive's testing_list files are then left out (silence: 90 % train, 10 % valid).
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from data.adapters.common import AdapterError, Report, find_paths, read_lines, walk_files
from ssl_audio.manifest import split_of

V1_WORDS = ("bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy", "house", "left",
            "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three",
            "tree", "two", "up", "wow", "yes", "zero")
V2_WORDS = tuple(sorted(V1_WORDS + ("backward", "follow", "forward", "learn", "visual")))
KEYWORDS_10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE, NOISE_DIR = "_unknown_", "_silence_", "_background_noise_"
SILENCE_SECONDS = 1.0


def speaker_of(name: str) -> str:
  return name.split("_nohash_")[0] if "_nohash_" in name else ""


def _silence_rows(noise_dir: Path, report: Report, fractions) -> list[dict]:
  rows = []
  for p in walk_files(noise_dir, exts=(".wav",)):
    try:
      info = sf.info(str(p))
    except Exception as e:  # noqa: BLE001 - any decoding failure is counted
      report.add_unreadable(p, str(e).splitlines()[0] if str(e) else type(e).__name__)
      continue
    n = int(info.frames / info.samplerate // SILENCE_SECONDS)
    bounds, acc = [], 0.0
    for name, frac in fractions:
      acc += frac
      bounds.append((name, round(acc * n)))
    for i in range(n):
      split = next(name for name, b in bounds if i < b) if n else "train"
      rows.append({"path": str(p), "label": SILENCE, "split": split, "speaker": "",
                   "source": f"{NOISE_DIR}/{p.name}", "word": SILENCE,
                   "start": f"{i * SILENCE_SECONDS:g}", "end": f"{(i + 1) * SILENCE_SECONDS:g}",
                   "duration": f"{SILENCE_SECONDS:g}"})
  if not rows:
    report.note(f"no usable {NOISE_DIR} files: no {SILENCE} rows")
  return rows


def _adapt(root: Path, report: Report, version: int, variant: str | None,
           test_dir: str | None) -> list[dict]:
  root = Path(root)
  variant = (variant or "full").lower()
  if variant not in ("full", "12", str(len(V1_WORDS if version == 1 else V2_WORDS))):
    raise AdapterError(f"speech_commands_v{version}: variant must be 'full' or '12', got {variant!r}")
  twelve = variant == "12"
  words = V1_WORDS if version == 1 else V2_WORDS
  lists = find_paths(root, ["validation_list.txt"], max_depth=3, want_dir=False)
  base = lists[0].parent if lists else root
  split_of_file: dict[str, str] = {}
  for fname, split in (("validation_list.txt", "valid"), ("testing_list.txt", "test")):
    lp = base / fname
    if not lp.is_file():
      report.note(f"{fname} not found: those files are split by sha1 of the speaker hash instead")
      continue
    for ln in read_lines(lp):
      ln = ln.strip().replace("\\", "/")
      if not ln:
        continue
      split_of_file[ln] = split
      if not (base / ln).is_file():
        report.add_missing(ln)
  have_lists = (base / "validation_list.txt").is_file() and (base / "testing_list.txt").is_file()
  word_dirs = sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
  if not word_dirs:
    raise AdapterError(f"speech_commands_v{version}: no <word>/ folders under {base}")
  extra = sorted({d.name for d in word_dirs} - set(words))
  if extra:
    report.note(f"folders not in the v{version} vocabulary (kept as labels): {extra}")
  absent = sorted(set(words) - {d.name for d in word_dirs})
  if absent:
    report.note(f"v{version} words without a folder: {absent}")
  rows = []
  for d in word_dirs:
    for p in walk_files(d, exts=(".wav",)):
      rel = f"{d.name}/{p.relative_to(d).as_posix()}"
      spk = speaker_of(p.name)
      if have_lists:
        split = split_of_file.get(rel, "train")
      else:
        split = split_of_file.get(rel) or split_of(spk or p.name, (("train", 0.8), ("valid", 0.1),
                                                                    ("test", 0.1)))
      if test_dir and split == "test":
        continue
      label = d.name
      if twelve and label not in KEYWORDS_10:
        label = UNKNOWN
      rows.append({"path": str(p), "label": label, "split": split, "speaker": spk,
                   "source": f"speech_commands_v{version}", "language": "en", "word": d.name})
  if twelve:
    noise = base / NOISE_DIR
    fractions = (("train", 0.9), ("valid", 0.1)) if test_dir else (("train", 0.8), ("valid", 0.1),
                                                                   ("test", 0.1))
    if noise.is_dir():
      rows += _silence_rows(noise, report, fractions)
    else:
      report.note(f"{NOISE_DIR}/ not found: no {SILENCE} rows")
  if test_dir:
    tdir = Path(test_dir)
    if not tdir.is_dir():
      raise AdapterError(f"speech_commands_v{version}: test_dir {tdir} is not a folder")
    n = 0
    for d in sorted(x for x in tdir.iterdir() if x.is_dir() and not x.name.startswith(".")):
      for p in walk_files(d, exts=(".wav",)):
        label = d.name if (not twelve or d.name in KEYWORDS_10 or d.name in (UNKNOWN, SILENCE)) else UNKNOWN
        rows.append({"path": str(p), "label": label, "split": "test", "speaker": speaker_of(p.name),
                     "source": f"speech_commands_v{version}_test_set", "language": "en", "word": d.name})
        n += 1
    report.note(f"official test set {tdir}: {n} files")
  return rows


def adapt_v1(root: Path, report: Report | None = None, variant: str | None = None,
             test_dir: str | None = None) -> list[dict]:
  """Speech Commands v0.01 (30 words; variant='12' for the 12-class task)."""
  return _adapt(root, report if report is not None else Report("speech_commands_v1"), 1, variant, test_dir)


def adapt_v2(root: Path, report: Report | None = None, variant: str | None = None,
             test_dir: str | None = None) -> list[dict]:
  """Speech Commands v0.02 (35 words; variant='12' for the 12-class task)."""
  return _adapt(root, report if report is not None else Report("speech_commands_v2"), 2, variant, test_dir)
