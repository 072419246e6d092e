"""Run infrastructure below every user of it: device and threads, RNG state, atomic checkpoints, run
directories, the scalar logger, schedules and the small numeric helpers the learners share (Polyak
averaging, the non-finite-loss guard). Nothing here imports from the rest of ``jepa_agents``."""
