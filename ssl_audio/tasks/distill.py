"""Knowledge distillation: a student encoder regresses a frozen teacher's embeddings.

The teacher is any checkpoint (``distill.teacher``: a workdir or one step folder; any
method, typically width 4); its encoder is read from the checkpoint (without
building the teacher's task) the first time the training step is traced; its weights are constants of the step (a frozen function,
BatchNorm in inference mode, ``stop_gradient``), so the one trainer runs it, with no
second loop. The student (``config.encoder``: width 1 by default) sees the same
log-mel slices (plus the student's own ``config.augment`` in training, not the
teacher's). Config keys:

* ``distill.teacher``: the teacher's path (required); ``distill.teacher_step`` (-1: latest).
* ``distill.loss``: ``mse`` (mean squared error of the embeddings) or ``cosine``
  (mean 1 - cosine similarity: scale-free).
* ``task.slices`` (2) random slices per example, from ``task.window_seconds`` (10) of a
  clip, each with a random gain of ``task.gain_jitter_db`` (0).
* ``distill.teacher_dim`` (0: the student's ``encoder.embedding_dim``): the teacher's
  embedding size, checked against its checkpoint; when it differs from the student's,
  the student regresses it through a Dense ``distill_head`` (out of the encoder: the
  probe reads the student's own embedding). A config key, so that loading the
  student never needs the teacher.

``baseline_loss``: the loss of predicting the teacher's (global) batch-mean embedding.
The checkpoint is an ordinary one: only the student is saved, and it loads wherever
a pretrained model does (``load_pretrained`` never needs the teacher). Not supported
yet: adding the student's own pretext loss (each task's model would have to expose
its encoder's embeddings).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import checkpoint as ckpt
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from ssl_audio import tasks
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks.base import Task, mse_with_baseline, random_gain, random_starts

LOSSES = ("mse", "cosine")


class DistillModel(nn.Module):
  task: "Distill"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    t = self.task
    b, n, s = batch["audio"].shape
    mel = fe.log_mel(batch["audio"].reshape(b * n, s), t.frontend)
    student = t.make_encoder()(mel, train=train)                      # [b*n, D_student]
    out = {"embedding": student}
    teacher_dim = t.teacher_dim()
    if teacher_dim != student.shape[-1]:
      student = nn.Dense(teacher_dim, name="distill_head")(student)
    out["prediction"] = student
    if train:   # init and evaluation never need the teacher
      out["teacher"] = jax.lax.stop_gradient(t.teacher_fn()(mel))
    return out


def cosine_distance(a: jax.Array, b: jax.Array) -> jax.Array:
  a = a / (jnp.linalg.norm(a, axis=-1, keepdims=True) + 1e-8)
  b = b / (jnp.linalg.norm(b, axis=-1, keepdims=True) + 1e-8)
  return 1.0 - jnp.sum(a * b, axis=-1)


@tasks.register
class Distill(Task):
  name = "distill"

  def __init__(self, config, frontend):
    super().__init__(config, frontend)
    self._teacher = None

  @classmethod
  def check_config(cls, config):
    d = config.get("distill")
    if d is None or not d.get("teacher"):
      raise ValueError("config.distill.teacher: the teacher checkpoint (a workdir) is required")
    if d.loss not in LOSSES:
      raise ValueError(f"config.distill.loss: must be one of {LOSSES}, got {d.loss!r}")
    if not isinstance(config.task.slices, int) or config.task.slices < 1:
      raise ValueError(f"config.task.slices: must be an integer >= 1, got {config.task.slices!r}")
    if not config.task.gain_jitter_db >= 0:
      raise ValueError(f"config.task.gain_jitter_db: must be >= 0, got {config.task.gain_jitter_db}")
    try:
      meta, _ = ckpt.read_meta(d.teacher, cls._step(d))
    except (FileNotFoundError, ValueError) as e:
      raise ValueError(f"config.distill.teacher: {d.teacher}: {e}") from e
    mine = fe.FrontendConfig.from_dict(config.frontend)
    theirs = fe.FrontendConfig.from_dict(meta["frontend"])
    if mine != theirs:
      raise ValueError(f"config.distill.teacher: its front-end {theirs} differs from "
                       f"config.frontend {mine}")
    dim = int(meta["config"]["encoder"]["embedding_dim"])
    if dim != (d.get("teacher_dim") or config.encoder.embedding_dim):
      raise ValueError(f"config.distill.teacher_dim: the teacher's embedding has {dim} units; "
                       f"set --config.distill.teacher_dim={dim}")

  @staticmethod
  def _step(d):
    step = d.get("teacher_step", -1)
    return None if step is None or step < 0 else int(step)

  # --- host side -------------------------------------------------------------
  @property
  def min_samples(self) -> int:
    return self.frontend.slice_samples

  def sample(self, clip, rng):
    s, n = self.frontend.slice_samples, self.config.task.slices
    if len(clip) < s:
      raise ValueError(f"clip of {len(clip)} samples is shorter than one slice ({s})")
    starts = random_starts(rng, len(clip), s, n)
    gain = random_gain(rng, n, self.config.task.gain_jitter_db)
    return {"audio": (np.stack([clip[t:t + s] for t in starts]) * gain[:, None]).astype(np.float32)}

  # --- the teacher -------------------------------------------------------------
  def _load_teacher(self):
    if self._teacher is None:
      d = self.config.distill
      # First called while the step is traced: read the files eagerly, not as traced ops.
      with jax.ensure_compile_time_eval():
        meta, variables, _ = ckpt.restore_encoder(d.teacher, self._step(d))
        variables = jax.tree.map(np.asarray, variables)
      encoder = encoder_lib.from_config(meta["config"]["encoder"])
      self._teacher = (encoder, variables)
    return self._teacher

  def teacher_dim(self) -> int:
    d = self.config.get("distill") or {}
    return int(d.get("teacher_dim") or self.config.encoder.embedding_dim)

  def teacher_fn(self):
    """log-mel [B, frames, mels] -> the teacher's embeddings; weights are constants."""
    encoder, variables = self._load_teacher()
    return lambda mel: encoder.apply(variables, mel, train=False)

  # --- accelerator side ------------------------------------------------------
  def model(self, num_classes=None):
    return DistillModel(self)

  def loss(self, outputs, batch):
    pred = outputs["prediction"].astype(jnp.float32)
    target = outputs["teacher"].astype(jnp.float32)
    if self.config.distill.loss == "mse":
      loss, metrics = mse_with_baseline(pred, target)
      metrics["cosine_distance"] = jnp.mean(cosine_distance(pred, target))
      return loss, metrics
    loss = jnp.mean(cosine_distance(pred, target))
    mean_t = jax.lax.pmean(jnp.mean(target, axis=0, keepdims=True), DATA_AXIS)
    return loss, {"mse": jnp.mean((pred - target) ** 2),
                  "baseline_loss": jnp.mean(cosine_distance(mean_t, target))}
