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

Result (2026-12-02, 2-core CPU, student width 1, 500 steps, batch 64, MSE, teacher
runs/cola_w4 = COLA width 4 at 400 steps): loss 0.165 vs 3.59 for the teacher's mean
embedding (cosine distance 0.012), 1.15 steps/s. Downstream (clip test accuracy %,
digits/language/msn/instrument, mean): student 22.0/24.6/72.6/47.5 (41.7), teacher
20.3/21.7/76.1/53.0 (42.8), width 1 from scratch for the same 500 steps
24.3/27.6/80.3/44.7 (44.2): the student is closer to its teacher (1.1 points on the mean,
3.4 per task, vs 1.4 and 5.6) but the teacher is no better than width 1 at this budget
(README "Mobile: export, int8, distillation").
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
