"""Supervised baseline: the same encoder + a Dense classifier, trained from scratch.

paper.md §4 ("Other baselines", [U, med]): the same small encoder trained on one
downstream task's labels, an upper bound for the frozen-embedding probes.
Choices the paper leaves open, fixed here or config keys:

* data: ``config.data.train`` (a manifest with a ``label`` column, folder:PATH as a
  folder-per-class tree, or a suite task such as suite:msn), rows with
  split == "train" (the trainer adds a hash split where the manifest has none).
* input: one random 96-frame slice of the labelled clip (the pipeline loads a
  random window of exactly one slice). A clip shorter than a slice (but at least
  ``task.min_seconds``, default 0.1 s) is zero-padded at a uniformly random offset.
* head: Dense(num_classes) on the 128-d embedding (``task.head_hidden`` > 0 adds a
  ReLU hidden layer); softmax cross-entropy.
* metrics: ``accuracy``; ``baseline_loss`` = the cross-entropy of the class prior
  of the training rows (the best constant predictor; log(num_classes) when the
  classes are balanced or the prior is unknown).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from ssl_audio import tasks
from ssl_audio.tasks.base import Task, embed_windows


class ClassifierModel(nn.Module):
  task: "Supervised"
  num_classes: int

  @nn.compact
  def __call__(self, batch, train: bool = False):
    emb = embed_windows(self.task.make_encoder(), batch["audio"], self.task.frontend, train)[:, 0]
    h = emb
    hidden = self.task.config.task.head_hidden
    if hidden:
      h = nn.relu(nn.Dense(hidden, name="head_hidden")(h))
    return nn.Dense(self.num_classes, name="head")(h)                 # logits [B, C]


@tasks.register
class Supervised(Task):
  name = "supervised"
  needs_labels = True

  def __init__(self, config, frontend):
    super().__init__(config, frontend)
    self.classes: list[str] | None = None
    self.log_prior: np.ndarray | None = None   # [C] log class prior (of the task's heads)

  @classmethod
  def check_config(cls, config):
    min_s, hidden = config.task.min_seconds, config.task.head_hidden
    if not min_s > 0:
      raise ValueError(f"config.task.min_seconds: must be > 0, got {min_s}")
    if not isinstance(hidden, int) or hidden < 0:
      raise ValueError(f"config.task.head_hidden: must be an integer >= 0, got {hidden!r}")

  # --- host side -------------------------------------------------------------
  @property
  def clip_samples(self) -> int:
    return self.frontend.slice_samples

  @property
  def min_samples(self) -> int:
    return max(self.frontend.win_length,
               int(round(self.config.task.min_seconds * self.frontend.sample_rate)))

  def sample(self, clip, rng):
    """audio [1, samples]: a random slice, or the clip zero-padded at a random offset."""
    s = self.frontend.slice_samples
    if len(clip) >= s:
      start = int(rng.integers(0, len(clip) - s + 1))
      x = clip[start:start + s]
    else:
      x = np.zeros(s, np.float32)
      off = int(rng.integers(0, s - len(clip) + 1))
      x[off:off + len(clip)] = clip
    return {"audio": x[None].astype(np.float32)}

  # --- accelerator side ------------------------------------------------------
  def set_classes(self, classes: list[str], counts: np.ndarray) -> None:
    """The class list and its counts (the prior), from the trainer or a checkpoint's meta."""
    self.classes = list(classes)
    counts = np.maximum(np.asarray(counts, np.float64), 1e-12)
    self.log_prior = np.log(counts / counts.sum()).astype(np.float32)

  def model(self, num_classes=None):
    if not num_classes:
      raise ValueError(f"{self.name}: model() needs num_classes (from the labelled data)")
    return ClassifierModel(self, num_classes)

  def loss(self, outputs, batch):
    logits = outputs.astype(jnp.float32)
    labels = batch["label"]
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    acc = jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))
    if self.log_prior is not None and len(self.log_prior) == logits.shape[-1]:
      baseline = -jnp.mean(jnp.asarray(self.log_prior)[labels])
    else:
      baseline = jnp.full((), np.log(logits.shape[-1]), jnp.float32)
    return loss, {"accuracy": acc, "baseline_loss": baseline}
