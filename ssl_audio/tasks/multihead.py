"""MultiHead baseline: one encoder, one softmax head per labelled task, trained jointly.

paper.md §4 ("Other baselines", [U, low-med]): one encoder trained on all the
downstream tasks at once, one head each. How it works here:

* data: ``config.data.train`` is a comma-separated list of sources, e.g.
  "suite:digits,suite:language,suite:msn,suite:instrument". ``manifest.resolve``
  concatenates them and prefixes each label with "SOURCE/"; the trainer's class
  list is the sorted union of the prefixed labels (split == "train" rows). Rows
  are drawn uniformly from the concatenation, so each dataset contributes in
  proportion to its size (no re-balancing).
* heads: ONE Dense over the whole label space; head k is the softmax over only the
  logits of dataset k's classes (the other logits are masked to -1e9 for an
  example of dataset k). This equals separate Dense heads, one per dataset.
* loss: mean over examples of their own head's cross-entropy.
* metrics: ``accuracy`` (within the own head), ``accuracy_NAME`` per dataset
  (NAME = the source without "suite:"; counted over the GLOBAL batch with psum,
  0 when a dataset has no example in the batch), and ``baseline_loss``: the
  cross-entropy of each head's class prior on the training rows.
* input: as ``supervised`` (one random slice, short clips zero-padded).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssl_audio import tasks
from ssl_audio.manifest import short_name  # metric keys: accuracy_<short_name(source)>
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks.supervised import Supervised


def source_names(data_train: str) -> list[str]:
  return [n.strip() for n in data_train.split(",") if n.strip()]


def class_groups(classes: list[str], sources: list[str]) -> np.ndarray:
  """Head index per class: the source whose "SOURCE/" prefixes it (longest match).

  A single source is not prefixed by ``manifest.resolve``: then every class is head 0.
  """
  if len(sources) <= 1:
    return np.zeros(len(classes), np.int32)
  out = []
  for c in classes:
    match = [k for k, s in enumerate(sources) if c.startswith(s + "/")]
    if not match:
      raise ValueError(f"config.data.train: class {c!r} matches none of the sources {sources}")
    out.append(max(match, key=lambda k: len(sources[k])))
  return np.array(out, np.int32)


@tasks.register
class MultiHead(Supervised):
  name = "multihead"

  def __init__(self, config, frontend):
    super().__init__(config, frontend)
    self.sources = source_names(config.data.get("train", "") or "")
    self.groups: np.ndarray | None = None      # [C] head index of each class

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    names = source_names(config.data.train)
    if len(set(names)) != len(names):
      raise ValueError(f"config.data.train: a source is listed twice: {names}")

  def set_classes(self, classes, counts):
    groups = class_groups(list(classes), self.sources)
    counts = np.maximum(np.asarray(counts, np.float64), 1e-12)
    head_total = np.bincount(groups, weights=counts, minlength=len(self.sources) or 1)
    self.classes = list(classes)
    self.groups = groups
    self.log_prior = np.log(counts / head_total[groups]).astype(np.float32)

  def model(self, num_classes=None):
    m = super().model(num_classes)
    if self.groups is None:
      raise ValueError("multihead: set_classes() must come before model() (the trainer takes "
                       "the classes from config.data.train, a loader from the checkpoint's meta)")
    return m

  def loss(self, outputs, batch):
    logits = outputs.astype(jnp.float32)
    labels = batch["label"]
    groups = jnp.asarray(self.groups)
    ex_group = groups[labels]                                          # [b]
    own = groups[None, :] == ex_group[:, None]                         # [b, C]
    logits = jnp.where(own, logits, -1e9)
    per = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    metrics = {"accuracy": jnp.mean(correct),
               "baseline_loss": -jnp.mean(jnp.asarray(self.log_prior)[labels])}
    n_heads = max(len(self.sources), 1)
    onehot = jax.nn.one_hot(ex_group, n_heads)                        # [b, H]
    hits = jax.lax.psum(correct @ onehot, DATA_AXIS)
    count = jax.lax.psum(jnp.sum(onehot, 0), DATA_AXIS)
    if n_heads > 1:
      for k, s in enumerate(self.sources):
        metrics[f"accuracy_{short_name(s)}"] = hits[k] / jnp.maximum(count[k], 1.0)
    return jnp.mean(per), metrics
