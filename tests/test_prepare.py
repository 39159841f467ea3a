"""Tests for ``python -m data.prepare``: one tiny fixture per dataset, in its real on-disk layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data import prepare
from data.adapters.common import AdapterError, Report
from ssl_audio.manifest import read_manifest


def audio(path: Path, seconds: float = 0.1, sr: int = 16000) -> Path:
  """A tiny real audio file (noise); format from the suffix."""
  path.parent.mkdir(parents=True, exist_ok=True)
  x = np.random.default_rng(len(str(path))).uniform(-0.3, 0.3, int(seconds * sr)).astype(np.float32)
  sf.write(str(path), x, sr, format=path.suffix[1:].upper())
  return path


def corrupt(path: Path) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b"not audio at all" * 8)
  return path


def text(path: Path, content: str) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(content, encoding="utf-8")
  return path


def run(dataset, root, out, *flags, capsys=None):
  """The CLI entry point; returns the manifest read back, after checking every path resolves."""
  rc = prepare.main([dataset, f"--root={root}", f"--out={out}", *flags])
  assert rc == 0
  m = read_manifest(out)
  for i in range(len(m)):
    assert os.path.isfile(m.path(i)), m.path(i)
  return m


def by_name(m) -> dict[str, dict]:
  return {Path(m.path(i)).name: m.row(i) for i in range(len(m))}


# ----------------------------------------------------------------------------------------- audioset

def make_audioset(root: Path) -> None:
  header = ("# Segments csv created Sun Mar  5 10:54:31 2017\n"
            "# num_ytids=5, num_segs=5, num_unique_labels=3, num_positive_labels=6\n"
            "# YTID, start_seconds, end_seconds, positive_labels\n")
  text(root / "balanced_train_segments.csv", header +
       '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
       '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n'
       '-0RWZT-miFs, 420.000, 430.000, "/m/05zppz,/m/09x0r"\n'
       '-1nilez17Dg, 0.000, 10.000, "/m/012xff"\n')
  text(root / "eval_segments.csv", header +
       '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"\n'
       '--BfvyPmVMo, 20.000, 30.000, "/m/03l9g"\n')
  text(root / "class_labels_indices.csv",
       'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n'
       '2,/t/dd00088,"Gush"\n3,/m/012xff,"Toothbrush"\n4,/m/068hy,"Domestic animals, pets"\n')
  audio(root / "audio" / "--PJHxphWEs.wav")                         # <YTID>
  audio(root / "audio" / "bal" / "Y--ZhevVpy1s.wav")                # Y<YTID>, nested
  audio(root / "audio" / "bal" / "-0RWZT-miFs_420.000_430.000.flac")  # <YTID>_<start>_<end>
  audio(root / "audio" / "eval" / "--4gqARaEJE_0_10000.wav")        # milliseconds
  # -1nilez17Dg and --BfvyPmVMo are not downloaded


def test_audioset(tmp_path):
  root = tmp_path / "audioset"
  make_audioset(root)
  report = Report("audioset")
  rows = prepare.REGISTRY["audioset"](root, report)
  assert len(rows) == 4 and report.missing == 2
  m = run("audioset", root, tmp_path / "as.csv")
  rows = by_name(m)
  assert rows["--PJHxphWEs.wav"]["label"] == "Speech;Gush"
  assert rows["--PJHxphWEs.wav"]["split"] == "train"
  assert rows["-0RWZT-miFs_420.000_430.000.flac"]["label"] == "Male speech, man speaking;Speech"
  assert rows["Y--ZhevVpy1s.wav"]["ytid"] == "--ZhevVpy1s"
  ev = rows["--4gqARaEJE_0_10000.wav"]
  assert ev["split"] == "test" and ev["label"] == "Domestic animals, pets;/m/07q6cd_"
  assert set(m.column("source")) == {"audioset"}
  assert ev.get("start", "") == "" and ev["segment_start"] == "0.000"
  # only the eval subset, clips as full videos
  _, rows2, rep2 = prepare.prepare("audioset", root, tmp_path / "as_eval.csv", subset="eval",
                                   full_videos=True)
  assert len(rows2) == 1 and rep2.missing == 1 and rows2[0]["end"] == "10.000"


# -------------------------------------------------------------------------------------- librispeech

def make_librispeech(root: Path) -> Path:
  ls = root / "LibriSpeech"
  text(ls / "SPEAKERS.TXT", ";ID  |SEX| SUBSET           |MINUTES| NAME\n"
       "19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n"
       "26   | M | train-clean-100  | 25.08 | Denny Sayers\n")
  for spk, chapters in (("19", ("198", "227")), ("26", ("495",))):
    for ch in chapters:
      for u in range(5):
        audio(ls / "train-clean-100" / spk / ch / f"{spk}-{ch}-{u:04d}.flac")
      text(ls / "train-clean-100" / spk / ch / f"{spk}-{ch}.trans.txt", "0000 HELLO\n")
  audio(ls / "dev-clean" / "84" / "121123" / "84-121123-0000.flac")
  corrupt(ls / "train-clean-100" / "26" / "495" / "26-495-0099.flac")
  return ls


def test_librispeech(tmp_path):
  make_librispeech(tmp_path / "data")
  m = run("librispeech", tmp_path / "data", tmp_path / "ls.csv", "--check-audio")
  assert len(m) == 15  # 16 files of train-clean-100, one unreadable; dev-clean not included
  assert list(m.column("label")) == list(m.column("speaker"))
  assert set(m.column("speaker")) == {"19", "26"}
  assert set(m.column("split")) <= {"train", "valid", "test"}
  rows = by_name(m)
  assert rows["19-227-0003.flac"]["source"] == "227" and rows["19-227-0003.flac"]["gender"] == "f"
  assert float(rows["26-495-0001.flac"]["duration"]) == pytest.approx(0.1, abs=1e-3)
  _, _, rep = prepare.prepare("librispeech", tmp_path / "data", tmp_path / "x.csv", check_audio=True)
  assert rep.unreadable == 1 and rep.missing == 0
  # chapter split: speaker 19 has one whole chapter in test, and no test utterance elsewhere
  _, rows, _ = prepare.prepare("librispeech", tmp_path / "data", tmp_path / "ch.csv", split_by="chapter")
  test_ch = {r["source"] for r in rows if r["speaker"] == "19" and r["split"] == "test"}
  assert len(test_ch) == 1
  assert all(r["split"] == "test" for r in rows if r["source"] in test_ch)
  # another subset
  _, rows, _ = prepare.prepare("librispeech", tmp_path / "data", tmp_path / "dev.csv", subset="dev-clean")
  assert [r["speaker"] for r in rows] == ["84"]


# ---------------------------------------------------------------------------------- speech commands

def make_speech_commands(root: Path) -> None:
  files = {"yes": ["0a7c2a8d_nohash_0", "0a7c2a8d_nohash_1", "c1d39ce8_nohash_0"],
           "no": ["0a7c2a8d_nohash_0", "ffd2ba2f_nohash_0"],
           "bed": ["c1d39ce8_nohash_0", "ffd2ba2f_nohash_1"],
           "backward": ["0a7c2a8d_nohash_0"]}
  for word, stems in files.items():
    for s in stems:
      audio(root / word / f"{s}.wav")
  text(root / "validation_list.txt", "no/ffd2ba2f_nohash_0.wav\nbed/ffd2ba2f_nohash_1.wav\n")
  text(root / "testing_list.txt", "yes/c1d39ce8_nohash_0.wav\nbed/c1d39ce8_nohash_0.wav\n"
       "yes/deadbeef_nohash_0.wav\n")  # the last one is not on disk
  audio(root / "_background_noise_" / "white_noise.wav", seconds=10, sr=8000)
  text(root / "_background_noise_" / "README.md", "noise\n")
  text(root / "LICENSE", "CC-BY-4.0\n")


def test_speech_commands_v2(tmp_path):
  root = tmp_path / "speech_commands_v0.02"
  make_speech_commands(root)
  report = Report("speech_commands_v2")
  rows = prepare.REGISTRY["speech_commands_v2"](root, report)
  assert len(rows) == 8 and report.missing == 1
  m = run("speech_commands_v2", root, tmp_path / "sc.csv")
  rows = {f"{r['word']}/{Path(r['path']).name}": r for r in map(m.row, range(len(m)))}
  assert set(m.column("label")) == {"yes", "no", "bed", "backward"}
  assert rows["yes/c1d39ce8_nohash_0.wav"]["split"] == "test"
  assert rows["no/ffd2ba2f_nohash_0.wav"]["split"] == "valid"
  assert rows["yes/0a7c2a8d_nohash_1.wav"]["split"] == "train"
  assert rows["yes/0a7c2a8d_nohash_1.wav"]["speaker"] == "0a7c2a8d"
  assert not any("_background_noise_" in p for p in m.column("path"))

  m12 = run("speech_commands_v2", root, tmp_path / "sc12.csv", "--variant=12")
  assert set(m12.labels()) == {"yes", "no", "_unknown_", "_silence_"}
  sil = m12.where(label="_silence_")
  assert len(sil) == 10 and sil.has("start")
  assert sorted(sil.column("split")) == ["test"] + ["train"] * 8 + ["valid"]
  assert set(m12.where(word="bed").column("label")) == {"_unknown_"}
  assert m12.segment(next(i for i in range(len(m12)) if m12.row(i)["label"] == "_silence_")) == (0.0, 1.0)

  # the official separate test set replaces the archive's testing_list files
  tdir = tmp_path / "speech_commands_test_set_v0.02"
  audio(tdir / "yes" / "1b4c9b89_nohash_0.wav")
  audio(tdir / "_unknown_" / "2aca1e72_nohash_0.wav")
  audio(tdir / "_silence_" / "silence_0.wav")
  _, rows, _ = prepare.prepare("speech_commands_v2", root, tmp_path / "sct.csv", variant="12",
                               test_dir=str(tdir))
  test = [r for r in rows if r["split"] == "test"]
  assert sorted(r["label"] for r in test) == ["_silence_", "_unknown_", "yes"]
  assert all(r["source"].endswith("test_set") for r in test)


def test_speech_commands_v1(tmp_path):
  root = tmp_path / "sc1"
  make_speech_commands(root)
  report = Report("speech_commands_v1")
  rows = prepare.REGISTRY["speech_commands_v1"](root, report)
  assert len(rows) == 8 and report.missing == 1
  assert any("backward" in n for n in report.notes)  # not a v1 word: noted
  m = run("speech_commands_v1", root, tmp_path / "sc1.csv", "--variant=12")
  assert set(m.where(word="backward").column("label")) == {"_unknown_"}


# ----------------------------------------------------------------------------------------- musan

def test_musan(tmp_path):
  root = tmp_path / "corpora" / "musan"
  subsets = {"music": ["fma", "jamendo", "rfm", "hd-classical"], "speech": ["librivox", "us-gov"],
             "noise": ["free-sound", "sound-bible"]}
  for lab, subs in subsets.items():
    for sub in subs:
      for i in range(2):
        audio(root / lab / sub / f"{lab}-{sub}-{i:04d}.wav")
      text(root / lab / sub / "ANNOTATIONS", "x\n")
  corrupt(root / "noise" / "free-sound" / "noise-free-sound-0999.wav")
  m = run("musan", tmp_path / "corpora", tmp_path / "musan.csv", "--check-audio")
  assert len(m) == 16
  assert set(m.labels()) == {"music", "speech", "noise"}
  sub_splits: dict[str, set] = {}
  for r in map(m.row, range(len(m))):
    assert r["speaker"] == r["source"] == Path(r["path"]).parent.name
    assert Path(r["path"]).parent.parent.name == r["label"]
    sub_splits.setdefault(r["speaker"], set()).add(r["split"])
  assert all(len(s) == 1 for s in sub_splits.values())  # no subset in two splits
  for lab in subsets:
    splits = set(m.where(label=lab).column("split"))
    assert {"train", "test"} <= splits
  _, _, rep = prepare.prepare("musan", root, tmp_path / "m2.csv", check_audio=True)
  assert rep.unreadable == 1


# ----------------------------------------------------------------------------------------- nsynth

def nsynth_example(note_str: str, family: str, source: str) -> dict:
  inst, pitch, vel = note_str.rsplit("-", 2)
  return {"note": 1, "note_str": note_str, "instrument": 7, "instrument_str": inst,
          "pitch": int(pitch), "velocity": int(vel), "sample_rate": 16000, "qualities": [0] * 10,
          "qualities_str": ["bright"] if family == "guitar" else [], "instrument_family": 3,
          "instrument_family_str": family, "instrument_source": 0, "instrument_source_str": source}


def test_nsynth(tmp_path):
  root = tmp_path / "nsynth"
  notes = {"nsynth-train": [("guitar_acoustic_010-060-100", "guitar", "acoustic"),
                            ("synth_lead_synthetic_000-072-050", "synth_lead", "synthetic"),
                            ("bass_electronic_018-022-127", "bass", "electronic")],
           "nsynth-test": [("guitar_electronic_028-050-025", "guitar", "electronic"),
                           ("reed_acoustic_023-049-075", "reed", "acoustic")]}
  for d, items in notes.items():
    meta = {n: nsynth_example(n, f, s) for n, f, s in items}
    text(root / d / "examples.json", json.dumps(meta))
    for n, _, _ in items:
      if n != "bass_electronic_018-022-127":  # listed but not on disk
        audio(root / d / "audio" / f"{n}.wav")
  report = Report("nsynth")
  assert len(prepare.REGISTRY["nsynth"](root, report)) == 4 and report.missing == 1
  m = run("nsynth", root, tmp_path / "ns.csv")
  rows = by_name(m)
  r = rows["synth_lead_synthetic_000-072-050.wav"]
  assert (r["label"], r["split"], r["speaker"], r["pitch"], r["velocity"], r["instrument_source_str"]) == \
      ("synth_lead", "train", "synth_lead_synthetic_000", "72", "50", "synthetic")
  assert rows["reed_acoustic_023-049-075.wav"]["split"] == "test"
  assert rows["guitar_acoustic_010-060-100.wav"]["qualities"] == "bright"
  # without examples.json, the fields come from the file name
  (root / "nsynth-test" / "examples.json").unlink()
  _, rows2, _ = prepare.prepare("nsynth", root, tmp_path / "ns2.csv")
  r2 = {Path(r["path"]).name: r for r in rows2}["guitar_electronic_028-050-025.wav"]
  assert (r2["label"], r2["speaker"], r2["pitch"]) == ("guitar", "guitar_electronic_028", 50)


# ------------------------------------------------------------------------------------ TUT scenes 2018

def test_tut_scenes_2018(tmp_path):
  base = tmp_path / "TUT-urban-acoustic-scenes-2018-development"
  files = [("airport", "barcelona", 0, 0), ("airport", "barcelona", 0, 1), ("airport", "helsinki", 3, 5),
           ("park", "barcelona", 1, 7), ("park", "helsinki", 4, 2), ("park", "helsinki", 4, 3)]
  meta, train, evaluate = ["filename\tscene_label\tidentifier\tsource_label"], [], []
  for scene, city, loc, seg in files:
    fn = f"audio/{scene}-{city}-{loc}-{seg}-a.wav"
    meta.append(f"{fn}\t{scene}\t{city}-{loc}\ta")
    (evaluate if city == "helsinki" else train).append(f"{fn}\t{scene}")
    if (scene, seg) != ("park", 3):  # park-helsinki-4-3-a.wav is missing
      audio(base / fn)
  text(base / "meta.csv", "\n".join(meta) + "\n")
  text(base / "evaluation_setup" / "fold1_train.txt", "\n".join(train) + "\n")
  text(base / "evaluation_setup" / "fold1_evaluate.txt", "\n".join(evaluate) + "\n")
  text(base / "evaluation_setup" / "fold1_test.txt", "\n".join(f.split("\t")[0] for f in evaluate) + "\n")
  report = Report("tut")
  assert len(prepare.REGISTRY["tut_scenes_2018"](tmp_path, report)) == 5 and report.missing == 1
  m = run("tut_scenes_2018", tmp_path, tmp_path / "tut.csv")
  rows = by_name(m)
  r = rows["airport-helsinki-3-5-a.wav"]
  assert (r["label"], r["split"], r["speaker"], r["source"], r["device"]) == \
      ("airport", "test", "helsinki-3", "helsinki", "a")
  assert rows["park-barcelona-1-7-a.wav"]["split"] == "train"
  assert set(m.labels()) == {"airport", "park"}
  # --valid-fraction=1 moves every train location to valid
  m2 = run("tut_scenes_2018", tmp_path, tmp_path / "tut2.csv", "--valid-fraction=1")
  assert set(m2.column("split")) == {"valid", "test"}


# ---------------------------------------------------------------------------- bird audio detection

def test_bird_audio_detection(tmp_path):
  root = tmp_path / "bad2018"
  text(root / "ff1010bird_metadata_2018.csv",
       "itemid,datasetid,hasbird\n64486,ff1010bird,0\n2525,ff1010bird,1\n99999,ff1010bird,1\n")
  text(root / "warblrb10k_public_metadata_2018.csv",
       "itemid,datasetid,hasbird\n759808e5-f824-401e-9058,warblrb10k,1\n"
       "1d94fc4a-1c63-4da0-9cac,warblrb10k,0\n")
  for i in ("64486", "2525"):
    audio(root / "ff1010bird_wav" / "wav" / f"{i}.wav")
  for i in ("759808e5-f824-401e-9058", "1d94fc4a-1c63-4da0-9cac"):
    audio(root / "warblrb10k_public_wav" / "wav" / f"{i}.wav")
  report = Report("bad")
  assert len(prepare.REGISTRY["bird_audio_detection"](root, report)) == 4 and report.missing == 1
  m = run("bird_audio_detection", root, tmp_path / "bad.csv")
  assert set(m.labels()) == {"0", "1"}
  assert set(m.column("source")) == {"ff1010bird", "warblrb10k"}
  assert by_name(m)["2525.wav"]["label"] == "1"
  m2 = run("bird_audio_detection", root, tmp_path / "bad2.csv", "--heldout=warblrb10k")
  assert set(m2.where(source="warblrb10k").column("split")) == {"test"}
  assert set(m2.where(source="ff1010bird").column("split")) <= {"train", "valid"}
  with pytest.raises(AdapterError):
    prepare.prepare("bird_audio_detection", root, tmp_path / "x.csv", heldout="nope")


# ------------------------------------------------------------------------------ spoken language id

def test_spoken_language_id(tmp_path):
  root = tmp_path / "spoken-language-identification"
  h1, h2, h3 = "63f5b79c76cf5a1a4bbd1c40f54b166e", "0c2d2ffa0e28a1a0a5f4a8f5b0a3e9c1", "f1e2d3c4b5a6978812345678"
  audio(root / "train" / "train" / f"de_f_{h1}.fragment1.flac")
  audio(root / "train" / "train" / f"de_f_{h1}.fragment1.speed1.flac")
  audio(root / "train" / "train" / f"en_m_{h2}.fragment12.flac")
  audio(root / "test" / "test" / f"es_f_{h3}.fragment3.flac")
  corrupt(root / "test" / "test" / f"en_f_{h3}.fragment4.flac")
  m = run("spoken_language_id", root, tmp_path / "lid.csv", "--check-audio")
  assert len(m) == 4
  rows = by_name(m)
  r = rows[f"en_m_{h2}.fragment12.flac"]
  assert (r["label"], r["language"], r["gender"], r["speaker"], r["split"], r["fragment"]) == \
      ("en", "en", "m", h2, "train", "12")
  assert rows[f"es_f_{h3}.fragment3.flac"]["split"] == "test"
  assert rows[f"de_f_{h1}.fragment1.speed1.flac"]["augmentation"] == "speed1"
  _, rows2, rep = prepare.prepare("spoken_language_id", root, tmp_path / "l2.csv", check_audio=True,
                                  variant="original")
  assert len(rows2) == 3 and rep.unreadable == 1


# ----------------------------------------------------------------------------------------- voxceleb1

def test_voxceleb1(tmp_path):
  root = tmp_path / "voxceleb1"
  files = [("1", "id10001/1zcIwhmdeo4/00001.wav"), ("1", "id10001/1zcIwhmdeo4/00002.wav"),
           ("2", "id10001/7gWzIy6yIIk/00001.wav"), ("3", "id10001/Y8hIVOBuels/00001.wav"),
           ("1", "id10002/6WO410QOeuo/00001.wav"), ("3", "id10002/C7k7C-PDvAA/00003.wav")]
  for _, rel in files[:-1]:  # the last one is missing
    audio(root / "vox1_dev_wav" / "wav" / rel)
  # identification also uses the test archive, unpacked separately
  files.append(("3", "id10270/5r0dWxy17C8/00001.wav"))
  audio(root / "vox1_test_wav" / "wav" / "id10270" / "5r0dWxy17C8" / "00001.wav")
  text(root / "iden_split.txt", "\n".join(f"{s} {r}" for s, r in files) + "\n")
  text(root / "vox1_meta.csv", "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
       "id10001\tA.J._Buckley\tm\tIreland\tdev\n")
  report = Report("vox")
  assert len(prepare.REGISTRY["voxceleb1"](root, report)) == 6 and report.missing == 1
  m = run("voxceleb1", root, tmp_path / "vox.csv")
  assert list(m.column("label")) == list(m.column("speaker"))
  assert set(m.labels()) == {"id10001", "id10002", "id10270"}
  rows = {"/".join(Path(m.path(i)).parts[-3:]): m.row(i) for i in range(len(m))}
  r = rows["id10001/7gWzIy6yIIk/00001.wav"]
  assert (r["split"], r["source"], r["gender"], r["nationality"]) == ("valid", "7gWzIy6yIIk", "m", "Ireland")
  assert rows["id10270/5r0dWxy17C8/00001.wav"]["split"] == "test"
  assert rows["id10002/6WO410QOeuo/00001.wav"]["split"] == "train"


# ------------------------------------------------------------------------------------------ folder

def test_folder(tmp_path):
  root = tmp_path / "mydata"
  for lab in ("dog", "cat"):
    for spk in ("alice", "bob", "carol"):
      for i in range(2):
        audio(root / lab / "recordings" / f"{spk}_{i}.wav")
  corrupt(root / "cat" / "broken.wav")
  m = run("folder", root, tmp_path / "folder.csv", "--speaker-pattern=^(?P<speaker>[a-z]+)_",
          "--check-audio")
  assert len(m) == 12 and set(m.labels()) == {"dog", "cat"}
  spk_split: dict[str, set] = {}
  for r in map(m.row, range(len(m))):
    spk_split.setdefault(r["speaker"], set()).add(r["split"])
  assert set(spk_split) == {"alice", "bob", "carol"}
  assert all(len(s) == 1 for s in spk_split.values())
  _, rows, rep = prepare.prepare("folder", root, tmp_path / "f2.csv", check_audio=True)
  assert rep.unreadable == 1 and "speaker" not in rows[0]


# ------------------------------------------------------------------------------------ CLI behaviour

def test_paths_relative_inside_out_folder_else_absolute(tmp_path):
  root = tmp_path / "mydata"
  audio(root / "a" / "x.wav")
  m = run("folder", root, tmp_path / "inside.csv")
  assert m.column("path")[0] == "mydata/a/x.wav"
  m = run("folder", root, tmp_path / "elsewhere" / "out.csv")
  assert os.path.isabs(m.column("path")[0])
  m = run("folder", root, tmp_path / "abs.csv", "--absolute")
  assert os.path.isabs(m.column("path")[0])


def test_cli_errors_and_summary(tmp_path, capsys):
  root = tmp_path / "mydata"
  audio(root / "a" / "x.wav")
  assert prepare.main(["folder", f"--root={root}", f"--out={tmp_path / 'o.csv'}", "--variant=12"]) == 2
  assert "not supported" in capsys.readouterr().err
  assert prepare.main(["musan", f"--root={root}", f"--out={tmp_path / 'o.csv'}"]) == 2
  assert prepare.main(["folder", f"--root={tmp_path / 'nope'}", f"--out={tmp_path / 'o.csv'}"]) == 2
  assert prepare.main(["--list"]) == 0
  assert "speech_commands_v2: options variant, test_dir" in capsys.readouterr().out
  # everything listed but nothing on disk: reported, nothing written, exit 1, no exception
  text(tmp_path / "vox" / "wav" / "id10001" / "README", "")
  text(tmp_path / "vox" / "iden_split.txt", "1 id10001/abc/00001.wav\n")
  assert prepare.main(["voxceleb1", f"--root={tmp_path / 'vox'}", f"--out={tmp_path / 'v.csv'}"]) == 1
  out = capsys.readouterr().out
  assert "missing 1" in out and "nothing written" in out
  assert not (tmp_path / "v.csv").exists()


def test_registry_covers_the_brief():
  assert set(prepare.REGISTRY) == {
      "audioset", "librispeech", "speech_commands_v1", "speech_commands_v2", "musan", "nsynth",
      "tut_scenes_2018", "bird_audio_detection", "spoken_language_id", "voxceleb1", "folder"}
