"""Baselines as models of the harness protocol (``macs_bench.models``), each with real loading code.

``MODELS`` is the name -> ``module:attribute`` table that ``pyproject.toml`` declares as the
``macs_bench.models`` entry points (a test keeps the two equal); ``LICENCES`` is shown by ``weights list``.
"""

MODELS = {
    "gt-prompt-sd": "macs_model.baselines.prompt:GroundTruthPrompt",
    "clap-zero-shot-sd": "macs_model.baselines.prompt:ZeroShotPrompt",
    "macs": "macs_model.baselines.macs:MacsRun",
    "audiotoken-world": "macs_model.baselines.token:world_audiotoken",
    "audiotoken-mss-world": "macs_model.baselines.token:world_audiotoken_mss",
    "gt-prompt-world": "macs_model.baselines.world:gt_prompt",
    "clap-zero-shot-world": "macs_model.baselines.world:zero_shot",
}

# baseline -> (weights it loads, licence); "unpublished": no checksum published by the authors
LICENCES = {
    "gt-prompt-sd": ("CompVis/stable-diffusion-v1-4 (hub commit pinned in the registry)", "CreativeML OpenRAIL-M"),
    "clap-zero-shot-sd": ("LAION-CLAP 630k-audioset-best (sha256 pinned) + SD v1.4",
                          "Apache-2.0 (CLAP); CreativeML OpenRAIL-M (SD)"),
    "macs": ("a macs-model run, or the authors' release alxzzz/MACS (checksums unpublished) + SD v1.4",
             "MIT (macs); CreativeML OpenRAIL-M (SD); Apache-2.0 (CLAP)"),
    "audiotoken-world": ("the synthetic world's CLAP-like pair and SD base (SHA256SUMS)", "MIT (macs world)"),
    "audiotoken-mss-world": ("world weights + a world separator run", "MIT (macs world)"),
    "gt-prompt-world": ("the world's SD base (SHA256SUMS)", "MIT (macs world)"),
    "clap-zero-shot-world": ("the world's CLAP-like pair and SD base (SHA256SUMS)", "MIT (macs world)"),
}
