"""What the offline suite is made of: Debian packages and, per task, which files.

Everything here is pure bookkeeping on an extracted package tree (``roots``:
package name -> folder where its .deb was unpacked). The heavy lifting
(decoding, band-limiting, writing) lives in ``data.suite``.

Each recipe returns ``Item``s: one output clip (or stream / crops) with its
label, speaker, source, language and the source files it is made of (``srcs``,
absolute paths) plus ``origins`` (``package:relative/path``), used to keep test
files out of the pretraining pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

# package -> short role description (all in Debian 12 "main").
PACKAGES: dict[str, str] = {
    "asterisk-core-sounds-en-wav": "speech en (8 kHz, 1 speaker)",
    "asterisk-core-sounds-es-wav": "speech es (8 kHz, 1 speaker)",
    "asterisk-core-sounds-fr-wav": "speech fr (8 kHz, 1 speaker)",
    "asterisk-core-sounds-it-wav": "speech it (8 kHz, 1 speaker)",
    "asterisk-core-sounds-ru-wav": "speech ru (8 kHz, 1 speaker)",
    "asterisk-prompt-es-co": "speech es (8 kHz GSM, 1 speaker)",
    "asterisk-prompt-fr-armelle": "speech fr (8 kHz GSM, 1 speaker)",
    "asterisk-prompt-it-menardi-wav": "speech it (8 kHz, 1 speaker)",
    "klettres-data": "speech, letters/syllables, 19 languages",
    "tuxpaint-stamps-default": "speech (stamp descriptions, digits), animal sounds",
    "singularity-music": "music",
    "drascula-music": "music",
    "planetblupi-music-ogg": "music",
    "wesnoth-1.16-music": "music",
    "asc-music": "music",
    "asterisk-moh-opsound-wav": "music (8 kHz hold music)",
    "colobot-common-sounds": "music + sound effects",
    "ufoai-sound": "sound effects, ambience",
    "wordwarvi-sound": "sound effects",
    "fluid-soundfont-gm": "GM soundfont FluidR3",
    "timgm6mb-soundfont": "GM soundfont TimGM6mb",
}

AUDIO_EXT = (".wav", ".ogg", ".mp3", ".gsm", ".flac")
KEEP_EXT = AUDIO_EXT + (".sf2", ".pk3")

CORE = {lang: f"asterisk-core-sounds-{lang}-wav" for lang in ("en", "es", "fr", "it", "ru")}
PROMPTS = {"asterisk-prompt-es-co": "es", "asterisk-prompt-fr-armelle": "fr",
           "asterisk-prompt-it-menardi-wav": "it"}
LANGUAGES = ("en", "es", "fr", "it", "ru")
TUX = "tuxpaint-stamps-default"
KLETTRES = "klettres-data"

MUSIC = ("singularity-music", "drascula-music", "planetblupi-music-ogg", "asc-music",
         "asterisk-moh-opsound-wav", "colobot-common-sounds")
SPEECH = tuple(CORE.values()) + tuple(PROMPTS) + (KLETTRES, TUX)
# Packages each build step needs (fetched before it, deleted when no later step needs them).
STEP_PACKAGES = {
    "instrument": ("fluid-soundfont-gm", "timgm6mb-soundfont"),
    "digits": tuple(CORE.values()) + tuple(PROMPTS) + (TUX,),
    "language": SPEECH,
    "msn": SPEECH + MUSIC + ("ufoai-sound", "wordwarvi-sound"),
    "pretrain": ("wesnoth-1.16-music", "drascula-music", "ufoai-sound", TUX),
}

# Band limits (Hz) per task: the lowest bandwidth among the task's sources.
BANDWIDTH = {"digits": 4000, "language": 4000, "msn": 4000, "instrument": None, "pretrain": None}


@dataclasses.dataclass
class Item:
  """One unit of work for the builder; see module doc."""
  out: str                    # output path relative to the task folder (no extension for crops)
  srcs: list[str]             # absolute input files (concatenated in order)
  origins: list[str]          # package:relpath for each input
  label: str = ""
  speaker: str = ""
  source: str = ""
  language: str = ""
  split: str = ""
  kind: str = "clip"          # clip | stream | crops
  crop_len: float = 0.0       # crops: crop length (s)
  max_crops: int = 0          # crops: at most this many, evenly spread
  max_len: float = 0.0        # stream: cut concatenations into files of about this length
  extra: dict = dataclasses.field(default_factory=dict)


def stable_hash(s: str) -> int:
  return int(hashlib.sha1(s.encode()).hexdigest()[:12], 16)


def stable_sample(items: Sequence, k: int, key: Callable = str) -> list:
  """Deterministic subset of size k (order: by hash of ``key``), independent of file system order.

  Key paths relative to the package root, so the choice does not depend on where the suite is built.
  """
  items = sorted(items, key=lambda x: stable_hash(key(x)))
  return sorted(items[:k], key=key) if k < len(items) else sorted(items, key=key)


def assign_splits(groups: Sequence[str], rules: Mapping[str, str], default: str = "train"
                  ) -> dict[str, str]:
  """Maps each group (speaker or source) to exactly one split.

  ``rules`` maps a group (or a prefix ending in ``*``) to its split. A group
  matched by no rule gets ``default``. Since the result is a function of the
  group, one group can never land in two splits.
  """
  out = {}
  for g in groups:
    split = default
    if g in rules:
      split = rules[g]
    else:
      for pat, s in rules.items():
        if pat.endswith("*") and g.startswith(pat[:-1]):
          split = s
          break
    out[g] = split
  return out


def files(root: Path, pattern: str = "**/*", ext: Sequence[str] = AUDIO_EXT) -> list[Path]:
  """Regular (non-symlink) audio files under root matching pattern, sorted."""
  return sorted(p for p in root.glob(pattern)
                if p.suffix.lower() in ext and p.is_file() and not p.is_symlink())


def origin(pkg: str, root: Path, p: Path) -> str:
  return f"{pkg}:{p.relative_to(root)}"


def safe(s: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


# ----------------------------------------------------------------------------- speech helpers

def core_voice_dir(root: Path) -> Path:
  base = root / "usr/share/asterisk/sounds"
  dirs = [d for d in base.iterdir() if d.is_dir()]
  assert len(dirs) == 1, dirs
  return dirs[0]


def asterisk_clips(pkg: str, root: Path) -> tuple[Path, list[Path]]:
  """Voice folder and its clips (all prompts, digits, letters; no silence)."""
  if pkg in CORE.values():
    voice = core_voice_dir(root)
  elif pkg == "asterisk-prompt-it-menardi-wav":
    voice = root / "usr/share/asterisk/sounds/it_IT_f_Menardi"
  else:
    voice = root / "usr/share/asterisk/sounds" / PROMPTS[pkg]
  clips = [p for p in files(voice) if "silence" not in p.parts and "beep" not in p.name]
  return voice, clips


def asterisk_speaker(pkg: str, root: Path) -> str:
  if pkg in CORE.values():
    return f"asterisk-{core_voice_dir(root).name}"
  return {"asterisk-prompt-es-co": "asterisk-es_CO", "asterisk-prompt-fr-armelle": "asterisk-fr_Armelle",
          "asterisk-prompt-it-menardi-wav": "asterisk-it_IT_f_Menardi"}[pkg]


TUX_LANG_RE = re.compile(r"^(?P<stem>.+?)_(?P<desc>desc_)?(?P<lang>[a-z]{2}(?:_[A-Za-z]{2})?)\.ogg$")


def tux_speech(root: Path) -> dict[str, list[Path]]:
  """Tux Paint spoken stamp names/descriptions by language code (one volunteer each)."""
  out: dict[str, list[Path]] = {}
  for p in files(root / "usr/share/tuxpaint/stamps", ext=(".ogg",)):
    m = TUX_LANG_RE.match(p.name)
    if not m:
      continue
    out.setdefault(m["lang"], []).append(p)
  return out


def tux_digits(root: Path) -> dict[str, dict[str, Path]]:
  """lang -> key -> file, from symbols/math/N_<lang>.ogg, N_desc_<lang>.ogg and N.ogg.

  Keys are the digit (``"7"``) or ``"7d"`` for a description; ``N.ogg`` is the
  stamp's default English voice (language ``en``, 11 kHz), under ``"default"``.
  """
  out: dict[str, dict[str, Path]] = {}
  for p in files(root / "usr/share/tuxpaint/stamps/symbols/math", ext=(".ogg",)):
    m = re.match(r"^([0-9])(?:_(desc_)?([a-z]{2}(?:_[A-Za-z]{2})?))?\.ogg$", p.name)
    if m:
      lang = m[3] or "default"
      out.setdefault(lang, {})[m[1] + ("d" if m[2] else "")] = p
  return out


def tux_animals(root: Path) -> list[Path]:
  return [p for p in files(root / "usr/share/tuxpaint/stamps/animals", ext=(".ogg",))
          if "_" not in p.stem]


def klettres(root: Path) -> dict[str, list[Path]]:
  base = root / "usr/share/klettres"
  return {d.name: files(d) for d in sorted(base.iterdir())
          if d.is_dir() and d.name not in ("icons", "pics") and files(d)}


# ----------------------------------------------------------------------------- task recipes

DIGIT_SPLITS = {
    "asterisk-es_CO": "test", "asterisk-fr_Armelle": "test", "asterisk-it_IT_f_Menardi": "test",
    "tuxpaint-es": "test", "tuxpaint-ru": "test",
    "tuxpaint-fr": "valid", "tuxpaint-en_GB": "valid", "tuxpaint-de": "valid",
}


def digits_items(roots: Mapping[str, Path]) -> list[Item]:
  items = []
  for pkg in list(CORE.values()) + list(PROMPTS):
    root = roots[pkg]
    voice, _ = asterisk_clips(pkg, root)
    spk = asterisk_speaker(pkg, root)
    lang = PROMPTS.get(pkg) or pkg.split("-")[3]
    for d in range(10):
      cands = [p for p in files(voice / "digits") if p.stem == str(d)]
      if cands:
        p = cands[0]
        items.append(Item(out=f"{pkg}/{safe(spk)}_{d}", srcs=[str(p)], origins=[origin(pkg, root, p)],
                          label=str(d), speaker=spk, source=pkg, language=lang))
  root = roots[TUX]
  for lang, dd in sorted(tux_digits(root).items()):
    # N_<lang>.ogg (number word) and N_desc_<lang>.ogg (description, also the number word) may be
    # the same volunteer: one speaker id per language keeps them in one split.
    spk = f"tuxpaint-{lang}"
    for key, p in sorted(dd.items()):
      d = key[0]
      items.append(Item(out=f"{TUX}/{safe(spk)}_{key}", srcs=[str(p)], origins=[origin(TUX, root, p)],
                        label=d, speaker=spk, source=f"{TUX}/{lang}",
                        language="en" if lang == "default" else lang))
  splits = assign_splits(sorted({i.speaker for i in items}), DIGIT_SPLITS)
  for i in items:
    i.split = splits[i.speaker]
  return items


LANGUAGE_SPLITS = {
    # One speaker per (source family, language): holding out a speaker whose family has no other
    # speaker of that language in training makes the family itself predict "not that language".
    # So the test speakers are, where possible, the second voice of a family and language:
    # asterisk prompt packs (es, fr, it; the asterisk core voices train), klettres en_GB (klettres en
    # trains), tuxpaint en_GB (tuxpaint en trains). ru has a single speaker per family: tuxpaint ru.
    "asterisk-es_CO": "test", "asterisk-fr_Armelle": "test", "asterisk-it_IT_f_Menardi": "test",
    "klettres-en_GB": "test", "tuxpaint-en_GB": "test", "tuxpaint-ru": "test",
    # train: asterisk core voices (5 languages), klettres en/es/fr/it/ru, tuxpaint en/es/fr/it.
    # No valid split: every other speaker is needed in train (see data/SUITE.md).
}
LANGUAGE_CAP = 200  # clips per speaker, for balance


def language_items(roots: Mapping[str, Path]) -> list[Item]:
  items = []

  def add(pkg, root, spk, lang, paths, cap=LANGUAGE_CAP, source=None):
    for p in stable_sample(paths, cap, key=lambda q: str(q.relative_to(root))):
      rel = p.relative_to(root)
      items.append(Item(out=f"{pkg}/{safe(spk)}/{safe(str(rel.with_suffix('')))}", srcs=[str(p)],
                        origins=[origin(pkg, root, p)], label=lang, speaker=spk, source=source or pkg,
                        language=lang))

  for pkg in list(CORE.values()) + list(PROMPTS):
    root = roots[pkg]
    lang = PROMPTS.get(pkg) or pkg.split("-")[3]
    add(pkg, root, asterisk_speaker(pkg, root), lang, asterisk_clips(pkg, root)[1])
  root = roots[KLETTRES]
  for code, paths in klettres(root).items():
    lang = code.split("_")[0]
    if lang in LANGUAGES:
      add(KLETTRES, root, f"klettres-{code}", lang, paths, source=f"{KLETTRES}/{code}")
  root = roots[TUX]
  speech = tux_speech(root)
  for code, paths in sorted(speech.items()):
    lang = code.split("_")[0]
    if lang in LANGUAGES:
      add(TUX, root, f"tuxpaint-{code}", lang, paths, source=f"{TUX}/{code}")
  splits = assign_splits(sorted({i.speaker for i in items}), LANGUAGE_SPLITS)
  for i in items:
    i.split = splits[i.speaker]
  return items


MSN_TEST_SOURCES = ("asterisk-prompt-es-co", "asterisk-prompt-fr-armelle", KLETTRES,
                    "asterisk-moh-opsound-wav", "asc-music", "planetblupi-music-ogg",
                    "ufoai-sound")
MSN_CROP = 2.0
MSN_PER_SOURCE = 240  # crops per (source, class) at most


def _crop_groups(pkg, root, label, groups: Mapping[str, list[Path]], per_source=MSN_PER_SOURCE,
                 concat=True, max_files=200) -> list[Item]:
  """Crops evenly spread over groups (speakers or files) of one source."""
  items = []
  groups = {k: v for k, v in groups.items() if v}
  if not groups:
    return items
  per_group = max(1, -(-per_source // len(groups)))
  for g, paths in sorted(groups.items()):
    paths = stable_sample(paths, max_files, key=lambda q: str(q.relative_to(root)))
    items.append(Item(out=f"{pkg}/{label}_{safe(g)}", srcs=[str(p) for p in paths],
                      origins=[origin(pkg, root, p) for p in paths], label=label, speaker=f"{pkg}:{g}",
                      source=pkg, kind="crops", crop_len=MSN_CROP, max_crops=per_group))
  return items


def msn_items(roots: Mapping[str, Path]) -> list[Item]:
  items: list[Item] = []
  # speech: one stream per speaker (short clips concatenated), cropped
  for pkg in list(CORE.values()) + list(PROMPTS):
    root = roots[pkg]
    items += _crop_groups(pkg, root, "speech", {asterisk_speaker(pkg, root): asterisk_clips(pkg, root)[1]},
                          per_source=120)
  root = roots[KLETTRES]
  items += _crop_groups(KLETTRES, root, "speech", klettres(root))
  root = roots[TUX]
  sp = {k: v for k, v in tux_speech(root).items() if len(v) >= 50}
  items += _crop_groups(TUX, root, "speech", sp)
  # music: one file per group
  for pkg, pat in (("singularity-music", "**/*"), ("drascula-music", "**/*"),
                   ("planetblupi-music-ogg", "**/*"), ("asc-music", "**/*"),
                   ("asterisk-moh-opsound-wav", "**/*"), ("colobot-common-sounds", "**/music/*")):
    root = roots[pkg]
    fs = files(root, pat)
    items += _crop_groups(pkg, root, "music", {p.stem: [p] for p in fs})
  # noise
  root = roots[TUX]
  items += _crop_groups(TUX, root, "noise", {"animals": tux_animals(root)})
  root = roots["colobot-common-sounds"]
  items += _crop_groups("colobot-common-sounds", root, "noise",
                        {"sfx": files(root, "**/sounds/*")})
  root = roots["ufoai-sound"]
  ufo = files(root / "sound")
  groups: dict[str, list[Path]] = {}
  for p in ufo:
    groups.setdefault(p.parent.relative_to(root / "sound").parts[0], []).append(p)
  # half of the ambience loops only: the other half stays available to the pretraining pool
  amb = groups.get("ambience", [])
  groups["ambience"] = stable_sample(amb, len(amb) // 2, key=lambda q: str(q.relative_to(root)))
  items += _crop_groups("ufoai-sound", root, "noise", groups)
  root = roots["wordwarvi-sound"]
  items += _crop_groups("wordwarvi-sound", root, "noise", {"sfx": wordwarvi_noise(root)})
  items += _crop_groups("wordwarvi-sound", root, "music", {p.stem: [p] for p in wordwarvi_music(root)},
                        per_source=120)
  for i in items:
    i.split = "test" if i.source in MSN_TEST_SOURCES else "train"
  return items


WORDWARVI_MUSIC = ("destiny_facedown", "dtox3monomix", "highscoremusic",
                   "lucky-holiday-cornbread-stuffing-mono", "lucky13-steve-mono-mix")
WORDWARVI_VOICE = ("UseTheSource", "aaaah_it_burns", "help_down_here", "help_up_here", "hohoho",
                   "hohoho_merry_xmas", "nice_bank_shot", "ooooof", "ow_my_spine", "woohoo",
                   "yay_santa")


def wordwarvi_noise(root: Path) -> list[Path]:
  """Sound effects only: the package also ships music tracks and voice lines."""
  return [p for p in files(root) if p.stem not in WORDWARVI_MUSIC + WORDWARVI_VOICE]


def wordwarvi_music(root: Path) -> list[Path]:
  return [p for p in files(root) if p.stem in WORDWARVI_MUSIC]


# GM families (NSynth-like): family -> programs (0-based GM numbers).
GM_FAMILIES = {
    "keyboard": [0, 1, 2, 4, 6],        # pianos, e-pianos, harpsichord
    "mallet": [8, 11, 12, 13],           # celesta, vibraphone, marimba, xylophone
    "organ": [16, 17, 19, 21],           # drawbar, percussive, church, accordion
    "guitar": [24, 25, 26, 29],          # nylon, steel, jazz, overdriven
    "bass": [32, 33, 35, 38],            # acoustic, finger, fretless, synth bass
    "string": [40, 41, 42, 48],          # violin, viola, cello, string ensemble
    "brass": [56, 57, 60, 61],           # trumpet, trombone, french horn, brass section
    "reed": [64, 65, 68, 71],            # soprano/alto sax, oboe, clarinet
    "flute": [72, 73, 75, 79],           # piccolo, flute, pan flute, ocarina
    "synth_lead": [80, 81, 84, 87],      # square, saw, charang, bass+lead
    "vocal": [52, 53, 54],               # choir aahs, voice oohs, synth voice
}
# MIDI pitch range per family (lowest, highest), notes every 2 semitones.
GM_RANGE = {"bass": (28, 55), "keyboard": (36, 84), "mallet": (53, 96), "organ": (36, 84),
            "guitar": (40, 76), "string": (43, 84), "brass": (45, 80), "reed": (50, 84),
            "flute": (60, 96), "synth_lead": (45, 84), "vocal": (48, 79)}
NOTE_VELOCITIES = (80, 115)
NOTE_LEN = 2.0      # seconds rendered per note
NOTE_ON = 1.5       # seconds before note-off
SOUNDFONTS = {"fluid-soundfont-gm": ("usr/share/sounds/sf2/FluidR3_GM.sf2", "train"),
              "timgm6mb-soundfont": ("usr/share/sounds/sf2/TimGM6mb.sf2", "test")}
# valid: one program per family, from the training soundfont (program-disjoint)
def instrument_notes() -> list[dict]:
  """The note list, shared by both soundfonts."""
  notes = []
  for fam, progs in GM_FAMILIES.items():
    lo, hi = GM_RANGE[fam]
    for prog in progs:
      for pitch in range(lo, hi + 1, 3):
        for vel in NOTE_VELOCITIES:
          notes.append({"family": fam, "program": prog, "pitch": pitch, "velocity": vel})
  return notes


def instrument_split(sf_pkg: str, family: str, program: int) -> str:
  base = SOUNDFONTS[sf_pkg][1]
  if base == "train" and GM_FAMILIES[family][-1] == program:
    return "valid"
  return base


PRETRAIN_LANGS = ("ro", "bg", "be", "el", "ca", "da", "lt", "nl")  # not used by the language task
PRETRAIN_SPEECH_MIN = 100.0
PRETRAIN_MUSIC = ("wesnoth-1.16-music", "drascula-music")
PRETRAIN_MUSIC_MIN = 175.0
PRETRAIN_STREAM_LEN = 60.0


def pretrain_items(roots: Mapping[str, Path], excluded: set[str]) -> list[Item]:
  """Long continuous audio; never a file used by a task's test split (``excluded`` origins)."""
  items: list[Item] = []

  def ok(pkg, root, p):
    return origin(pkg, root, p) not in excluded

  for pkg in PRETRAIN_MUSIC:
    root = roots[pkg]
    for p in files(root):
      if ok(pkg, root, p):
        items.append(Item(out=f"{pkg}/{safe(p.stem)}", srcs=[str(p)], origins=[origin(pkg, root, p)],
                          speaker="", source=pkg, kind="stream", label="music",
                          extra={"est_min": None}))
  root = roots["ufoai-sound"]
  for p in files(root / "sound/ambience"):
    if ok("ufoai-sound", root, p):
      items.append(Item(out=f"ufoai-sound/{safe(p.stem)}", srcs=[str(p)],
                        origins=[origin("ufoai-sound", root, p)], source="ufoai-sound",
                        kind="stream", label="ambience"))
  root = roots[TUX]
  speech = tux_speech(root)
  for lang in PRETRAIN_LANGS:
    paths = [p for p in speech.get(lang, []) if ok(TUX, root, p)]
    if paths:
      items.append(Item(out=f"{TUX}/speech_{lang}", srcs=[str(p) for p in paths],
                        origins=[origin(TUX, root, p) for p in paths], source=TUX,
                        speaker=f"tuxpaint-{lang}", language=lang, kind="stream",
                        max_len=PRETRAIN_STREAM_LEN, label="speech"))
  return items
