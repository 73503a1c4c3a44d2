"""Stage 2 (paper §3.3): the audio adapter on a frozen Stable Diffusion, its training, pipeline and release import."""
