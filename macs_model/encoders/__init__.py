"""Audio encoders the baselines build on (BEATs for AudioToken, ImageBind's audio tower for unCLIP), restated
from their authors' code with configs, presets and loading code."""
