"""The synthetic world's own foundation models: small, learned, shipped, reproducible bit for bit on CPU.

The demo's world (``macs_bench.world.synthetic``: four sound classes, each tied to a visual motif) gets its
own miniature of every pre-trained network the paper relies on, trained once by ``tools/train_world.py``:

- scoring stand-ins (``towers.safetensors``): an image tower whose trunk stands in for Inception (FID, KID) and
  whose projection stands in for CLIP ViT-B/32 (CLIP-FID, IIS, AIS), a text tower over class names trained
  contrastively with it (zero-shot detection of motifs), and an audio tower trained into the image space
  (wav2clip's recipe);
- a CLAP-like audio/text pair (``clap.safetensors``) for stage 1 and stage 2;
- a small Stable Diffusion base (``sd/``: diffusers ``AutoencoderKL``, ``CLIPTextModel``,
  ``UNet2DConditionModel``) that draws the motifs from class-name prompts with the stock pipeline.

``SHA256SUMS`` pins every shipped weights file; ``report.json`` holds the held-out numbers the training printed.
"""

from pathlib import Path

WORLD_DIR = Path(__file__).resolve().parent / "weights"
TOWERS_FILE = "towers.safetensors"
CLAP_FILE = "clap.safetensors"
SD_DIR = "sd"
SUMS_FILE = "SHA256SUMS"
REPORT_FILE = "report.json"
