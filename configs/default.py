"""Keys shared by every method; each config file changes only what differs.

Override any key on the command line: ``--config.encoder.width=4``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 64                 # global, over all devices and hosts
  c.num_train_steps = 1000          # 0 writes the random-init checkpoint (the Untrained baseline)
  c.log_every_steps = 25
  c.checkpoint_every_steps = 250
  c.keep_checkpoints = 3
  c.max_nonfinite_steps = 50        # stop after this many non-finite losses in a row (0: never;
                                    # checked when metrics are logged)
  c.num_devices = 0                 # 0: every device; n: the first n (tests)
  c.distributed = False             # True: jax.distributed.initialize() (multi-host)

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"         # adam | adamw | sgd
  c.optimizer.learning_rate = 1e-3  # paper.md §5: Adam ~1e-3 is a recollection [U, low]
  c.optimizer.schedule = "cosine"   # constant | cosine
  c.optimizer.warmup_steps = 50
  c.optimizer.weight_decay = 0.0    # adamw only
  c.optimizer.momentum = 0.9        # sgd only
  c.optimizer.grad_clip_norm = 0.0  # 0: no clipping

  c.frontend = ml_collections.ConfigDict(dict(
      sample_rate=16000, win_length=400, hop_length=160, n_fft=1024, n_mels=64,
      fmin=60.0, fmax=7800.0, power=1.0, log_floor=1e-5, slice_frames=96))

  c.encoder = ml_collections.ConfigDict()
  c.encoder.width = 1.0             # channel multiplier: 1 (about 19 MFLOPs per slice) or 4
  c.encoder.embedding_dim = 128
  c.encoder.norm = "batch"          # batch | none
  c.encoder.input_norm = "none"     # none | pool: log-mel (x - mean) / std of the pretraining pool
  c.encoder.input_mean = 0.0        # set by the trainer when input_norm = "pool"
  c.encoder.input_std = 1.0
  c.encoder.quant = "none"          # none | w8a8: int8 fake quantization (QAT; ssl_audio/quant.py)

  # Training-only log-mel augmentation, every task alike (ssl_audio/augment.py); 0 = off.
  c.augment = ml_collections.ConfigDict(dict(
      gain_db=0.0, mixup_ratio=0.0, time_masks=0, time_mask_frames=10, freq_masks=0,
      freq_mask_bins=8, band_limit_prob=0.0, band_limit_min_hz=3500.0))

  c.task = ml_collections.ConfigDict()
  c.task.name = ""

  c.data = ml_collections.ConfigDict()
  c.data.pretrain = "suite:pretrain"  # suite:NAME | manifest:PATH | folder:PATH | a folder | a .csv
  c.data.train = ""                   # labelled data for supervised tasks
  c.data.num_workers = 2              # decoding processes; 0 decodes in the main process
  c.data.packed = False               # True: decode the pool once into an int16 store, then copy
                                      # windows from it (ssl_audio/packed.py)
  c.data.packed_dir = ""              # where stores live ("": $SSL_AUDIO_CACHE/packed or
                                      # ~/.cache/ssl_audio/packed)

  # Federated pretraining (ssl_audio/federated/): rounds > 0 makes `python main.py` run
  # FedAvg over the clients of data.pretrain instead of centralised steps; README
  # "Federated pretraining". Clients train with `optimizer` (constant learning rate).
  c.federated = ml_collections.ConfigDict(dict(
      rounds=0, clients_per_round=4, local_steps=1,
      group_by="speaker,source,file",   # per row, the first non-empty of these is its client
      iid=False,                        # True: clips reshuffled across clients (same sizes)
      server_optimizer="sgd",           # sgd | adam (FedAdam); FedAvg = sgd with lr 1
      server_learning_rate=1.0, server_momentum=0.0,
      batchnorm="average",              # average: statistics averaged like weights; local: stay on the client
      client_parallelism="sequential",  # sequential | vmap
      unroll_local_steps=True,          # straight-line local steps (XLA:CPU loops are ~10x slower)
      log_every_rounds=1, checkpoint_every_rounds=25,
      dp=ml_collections.ConfigDict(dict(
          enabled=False, clip_norm=1.0,
          noise_multiplier=0.0,         # > 0: given; 0 with target_epsilon > 0: calibrated
          target_epsilon=0.0,
          delta=0.0))))                 # 0: 1 / number of clients

  # In-training probes: name -> ConfigDict(task=..., every_steps=...); see eval/.
  c.evals = ml_collections.ConfigDict()
  return c
