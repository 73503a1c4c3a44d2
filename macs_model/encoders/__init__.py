"""Audio encoders the baselines build on, restated from their authors' code with configs, presets and loading code."""
