"""Training: optimizers and schedules (:mod:`.optim`), run recipes (:mod:`.recipe`; the config tree
in :mod:`.pretrain_config`), checkpoints (:mod:`.checkpointing`), metrics logging (:mod:`.logging`),
clean stops on signals (:mod:`.signals`), DDP helpers (:mod:`.distributed`), FSDP sharding and
sharded checkpoints (:mod:`.fsdp`), the pretraining loop (:mod:`.pretrain`, :mod:`.pretrain_data`)
and fine-tuning. Submodules are imported on demand so that ``import bertforge.train.optim`` stays
cheap."""
