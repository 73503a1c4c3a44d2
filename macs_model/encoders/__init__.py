"""Audio encoders the baselines run on (BEATs for AudioToken)."""
