"""Pretrain an audio encoder with a self-supervised pretext task.

  python main.py --config=configs/temporal_gap.py --workdir=runs/tg
  python main.py --config=configs/temporal_gap.py --workdir=runs/tg4 --config.encoder.width=4
  python main.py --config=configs/federated_temporal_gap.py --workdir=runs/fed   # FedAvg

Re-running the same command resumes from the latest checkpoint in the workdir.
"""

from absl import app, flags, logging
from ml_collections import config_flags

import data.suite  # noqa: F401  registers suite: (the library itself never imports data/)
import eval.evaluators  # noqa: F401  registers the linear_probe evaluator for config.evals
from ssl_audio import train
from ssl_audio.federated import config as federated_config, loop as federated_loop
from ssl_audio.metric_writer import quiet_orbax_logging

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  quiet_orbax_logging(logging.WARNING)
  run = (federated_loop.train_and_evaluate if federated_config.enabled(FLAGS.config)
         else train.train_and_evaluate)
  run(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
