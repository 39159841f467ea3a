"""Copy a manifest's audio as Ogg Opus at a low bitrate, with a manifest of the copies.

For shipping a pretraining pool to a machine that only takes a small upload (a rented
accelerator; `shared` storage with a quota): the suite's 311-minute pool is 525 MB of
16-kHz FLAC and about 45 MB of Opus at 20 kbit/s. Every column is kept; ``path`` points
at the copy, ``start``/``end`` segments are cut out (the copy holds only the segment).
Opus is lossy: a model pretrained on the copy has seen slightly different audio
(``--check`` prints the log-mel error), so say so beside any result it gives.

  python -m data.transcode --source=suite:pretrain --out=/tmp/pool_opus --kbps=20
  python main.py --config=configs/temporal_gap.py --workdir=runs/tg \\
      --config.data.pretrain=manifest:/tmp/pool_opus/manifest.csv --config.data.packed=True
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np
import soundfile as sf
from absl import app, flags

import data.suite  # noqa: F401  registers suite:
from ssl_audio import audio as audio_lib
from ssl_audio import frontend as fe
from ssl_audio import manifest as manifest_lib

FLAGS = flags.FLAGS


def compression_level(kbps: float) -> float:
  """libsndfile maps its compression level in [0, 1] linearly onto Opus bitrates of
  about 256 kbit/s down to 6 kbit/s (measured: 0.9 -> 28 kbit/s on speech and music)."""
  return float(np.clip(1.0 - (kbps - 6.0) / 250.0, 0.0, 1.0))


def transcode_one(src: str, start, end, dst: str, sample_rate: int, kbps: float) -> float:
  """Writes dst (Ogg Opus); returns its duration in seconds."""
  x = audio_lib.load_audio(src, sample_rate, start, end)
  tmp = dst + ".tmp"
  sf.write(tmp, x, sample_rate, format="OGG", subtype="OPUS",
           compression_level=compression_level(kbps))
  os.replace(tmp, dst)
  return len(x) / sample_rate


def transcode(source: str, out: str, kbps: float = 20.0, sample_rate: int = 16000) -> str:
  """Transcodes every row of ``source``; returns the new manifest's path. Rows that do not
  decode are left out and counted."""
  m = manifest_lib.resolve(source)
  os.makedirs(os.path.join(out, "audio"), exist_ok=True)
  jobs = []
  for i in range(len(m)):
    start, end = m.segment(i)
    jobs.append((m.path(i), start, end, os.path.join(out, "audio", f"{i:06d}.opus")))
  rows, failed = [], 0
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
    futs = [pool.submit(transcode_one, *job[:3], job[3], sample_rate, kbps) for job in jobs]
    for i, (fut, job) in enumerate(zip(futs, jobs)):
      try:
        dur = fut.result()
      except audio_lib.BadAudio as e:
        print(f"left out {job[0]}: {e}")
        failed += 1
        continue
      row = dict(m.row(i), path=os.path.relpath(job[3], out), start="", end="",
                 duration=f"{dur:.3f}")
      rows.append(row)
  path = os.path.join(out, "manifest.csv")
  manifest_lib.write_manifest(path, rows)
  size = sum(os.path.getsize(os.path.join(out, r["path"])) for r in rows)
  secs = sum(float(r["duration"]) for r in rows)
  print(f"{len(rows)} files ({failed} left out), {secs / 60:.1f} min, {size / 2**20:.1f} MiB "
        f"({size * 8 / max(secs, 1e-9) / 1000:.1f} kbit/s) -> {path}")
  return path


def log_mel_error(source: str, copy: str, n: int = 8, sample_rate: int = 16000) -> float:
  """Mean absolute log-mel difference (natural-log units) between n originals and copies."""
  import jax
  f = fe.FrontendConfig(sample_rate=sample_rate)
  a, b = manifest_lib.resolve(source), manifest_lib.read_manifest(copy)
  errs = []
  for i in np.linspace(0, len(b) - 1, n).astype(int):
    orig = int(os.path.basename(b.columns["path"][i])[:6])   # the copy of row k is k.opus
    start, end = a.segment(orig)
    x = audio_lib.load_audio(a.path(orig), sample_rate, start, end)
    y = audio_lib.load_audio(b.path(i), sample_rate)
    k = min(len(x), len(y), 30 * sample_rate)
    mx, my = (np.asarray(jax.jit(lambda z: fe.log_mel(z[None], f))(v[:k])) for v in (x, y))
    errs.append(float(np.mean(np.abs(mx - my))))
  return float(np.mean(errs))


def main(argv):
  del argv
  if not FLAGS.out:
    raise app.UsageError("--out is required")
  path = transcode(FLAGS.source, FLAGS.out, FLAGS.kbps, FLAGS.sample_rate)
  if FLAGS.check:
    print(f"mean |log-mel difference| on 8 files: {log_mel_error(FLAGS.source, path):.3f} "
          "(natural-log units; 0.115 = 1 dB)")


def define_flags() -> None:
  """Flags of the command line (defined there only: eval.linear_eval also has --out)."""
  flags.DEFINE_string("source", "suite:pretrain", "Data source (suite:NAME, manifest:PATH, folder).")
  flags.DEFINE_string("out", None, "Output folder: <out>/audio/*.opus and <out>/manifest.csv.")
  flags.DEFINE_float("kbps", 20.0, "Target bitrate (libsndfile's Opus encoder, variable rate).")
  flags.DEFINE_integer("sample_rate", 16000, "Rate of the copies.")
  flags.DEFINE_bool("check", True, "Print the log-mel error of the copies on a few files.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
