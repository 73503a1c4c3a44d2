"""The shipped world SD base opens with the stock diffusers pipeline and draws the prompted motifs."""

import pytest
import torch

MIN_RIGHT = 24


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 21 open: the retrained world SD base draws single-class prompts at "
                   "chance (the judge's top-1 is the prompted class 4 times of 36, chance 3; most images are bare "
                   "ground); it needs a retrain (tools/train_world.py --parts sd) with a recipe that draws them")
def test_stock_pipeline_draws_the_prompted_motif():
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    from macs_bench.world.synthetic import CLASSES
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_bench.world.sd import prompt
    from macs_bench.world.towers import image_tensor, load_towers

    pipe = StableDiffusionPipeline.from_pretrained(str(WORLD_DIR / SD_DIR), safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    prompts = [prompt([c]) for c in CLASSES for _ in range(3)]
    images = pipe(prompts, num_inference_steps=20, guidance_scale=3.0, height=32, width=32,
                  generator=torch.Generator().manual_seed(0)).images
    towers = load_towers()
    with torch.no_grad():
        scores = towers.image(image_tensor(images)) @ towers.text(list(CLASSES)).T
    drawn = scores.argmax(1).tolist()
    wanted = [i for i in range(len(CLASSES)) for _ in range(3)]
    assert sum(d == w for d, w in zip(drawn, wanted)) >= MIN_RIGHT  # of 36; chance is 3
