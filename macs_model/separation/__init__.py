"""Stage 1 (paper §3.1-3.2): the CLAP-aligned MixIT separator, its data, losses, training and release import."""
