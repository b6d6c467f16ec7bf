"""Names of the metrics the engine reports (importable without torch: the dashboard reads them)."""

# The per-step metrics the engine reports, in the order they are shown.
STEP_FIELDS = (
    "step",
    "epoch",
    "loss",
    "deviation",
    "batch_size",
    "active_clients",
    "sim_step_time",
    "sim_fwd_phase",
    "sim_server",
    "sim_head_phase",
    "sim_bwd_phase",
    "sim_sync",
    "sim_time",
    "bytes_up",
    "bytes_down",
    "slowest_client",
    "wall_time",
    "lr",
)
EPOCH_FIELDS = (
    "epoch",
    "step",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "sim_time",
    "wall_time",
    "per_class_acc",
    # run totals so far, mean over clients (every engine reports them, PSL and the paradigms alike)
    "bytes_per_client",
    "energy_per_client_j",
)
# Kept on the steps where a live evaluation ran (training.eval_every_unit = 'steps'); the store keeps
# them with the step's extra metrics.
STEP_EVAL_FIELDS = ("test_loss", "test_acc", "test_samples")
# Test samples an epoch's evaluation used (a fixed subset before the last epoch, methods §1).
EPOCH_EVAL_FIELDS = ("test_samples",)
# The phases of a synchronous step (methods §4); they add up to sim_step_time. With helpers the step is
# the makespan of the helpers' schedule and the phases are 0.
STEP_PHASE_FIELDS = ("sim_fwd_phase", "sim_server", "sim_head_phase", "sim_bwd_phase", "sim_sync")
# Fields that legitimately differ between two runs of the same config and seed.
NONDETERMINISTIC_FIELDS = ("wall_time",)
