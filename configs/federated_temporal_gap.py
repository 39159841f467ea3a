r"""TemporalGap pretrained with FedAvg over the speakers and sources of suite:pretrain.

Command:
  python main.py --config=configs/federated_temporal_gap.py --workdir=runs/fed_tg

Clients: per clip, its speaker, else its source package (suite:pretrain: 8 speakers of
the speech half + 3 source packages of the music and ambience = 11 clients, 1 to 40 clips
each, non-IID by construction). A client sends and receives 1.85 MB a round.
Each round 4 clients run 1 local step of batch 16 (64 examples per round, as one
centralised step of batch 64); FedAvg = server SGD at learning rate 1. 700 rounds =
44,800 examples, as configs/temporal_gap.py at --config.num_train_steps=700.

Result: (2026-12-02, 2-core CPU shared with other jobs) 84-112 rounds/min (90-120
examples/s) over rounds 21-60 of this config; 1.85 MB up and down per client and round.
Not scored downstream: RQ4 is measured with configs/federated_cola.py, because
TemporalGap stays within the noise of its random init at this budget (README "Results").

Variants (README "Federated pretraining", RQ4):
  --config.federated.iid=True                      the same clients, clips dealt at random
  --config.federated.local_steps=10 --config.federated.rounds=70
  --config.federated.dp.enabled=True --config.federated.dp.target_epsilon=8
  --config.federated.server_optimizer=adam --config.federated.server_learning_rate=1e-3
"""

from configs import temporal_gap


def get_config():
  return fedavg_as_centralised_budget(temporal_gap.get_config())


def fedavg_as_centralised_budget(c):
  """FedAvg settings whose round sees what one centralised step of batch 64 sees: 4
  clients x 1 local step x 16 clips, server SGD at 1; 700 rounds = 44,800 examples."""
  c.batch_size = 16                       # per client and local step
  c.optimizer.learning_rate = 1e-3        # the clients' Adam (constant: fresh every round)
  f = c.federated
  f.rounds = 700
  f.clients_per_round = 4
  f.local_steps = 1
  f.server_optimizer = "sgd"
  f.server_learning_rate = 1.0
  f.batchnorm = "average"
  f.log_every_rounds = 10
  f.checkpoint_every_rounds = 50
  return c
