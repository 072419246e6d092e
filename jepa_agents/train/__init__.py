"""Training infrastructure: device, seeding, run directories, logging, checkpoints and the loop."""
