r"""Knowledge distillation: a width-1 student regresses a frozen teacher's embeddings
(ssl_audio/tasks/distill.py) on unlabelled audio (data.pretrain).

Commands (teacher: any method's checkpoint, typically width 4):
  python main.py --config=configs/cola.py --workdir=runs/cola_w4 --config.encoder.width=4
  python main.py --config=configs/distill.py --workdir=runs/distill_w1 \
      --config.distill.teacher=runs/cola_w4
  python -m eval.linear_eval --workdir=runs/distill_w1,runs/cola_w4,runs/cola \
      --benchmarks=suite:all

Keys: distill.teacher (required), distill.teacher_step (-1: latest), distill.loss
(mse | cosine), distill.teacher_dim (0: the student's embedding_dim), task.slices (2
random slices per example), task.window_seconds (10), task.gain_jitter_db (0);
encoder.* is the student's. The teacher's weights are constants of the one
trainer's step (inference-mode BatchNorm, no gradient); the checkpoint holds only
the student, which loads with load_pretrained like any other.

Result: not measured yet (README "Mobile: export, int8, distillation").
"""

import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "distill"
  c.task.window_seconds = 10.0
  c.task.slices = 2
  c.task.gain_jitter_db = 0.0
  c.distill = ml_collections.ConfigDict(dict(teacher="", teacher_step=-1, loss="mse",
                                             teacher_dim=0))
  return c
