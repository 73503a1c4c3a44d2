"""The shipped world SD base opens with the stock diffusers pipeline and draws the prompted motifs."""

import pytest
import torch

MIN_RIGHT = 24


def test_motif_weight_marks_the_motif_pixels_and_the_latent_cells_that_hold_them():
    import numpy as np

    from macs_bench.world.motifs import draw_frame
    from macs_bench.world.towers import image_tensor
    from macs_bench.world.train_sd import MOTIF_WEIGHT, motif_weight

    frame = image_tensor([draw_frame(["Hum"], np.random.default_rng(3))])
    pixels = np.asarray(frame[0].permute(1, 2, 0)) * 255
    motif = np.abs(pixels - 128).max(-1) > 12.75  # away from the grey ground (128) by more than 5 %
    weight = motif_weight(frame)[0, 0].numpy()
    assert 0 < motif.mean() < 0.2
    assert np.array_equal(weight, np.where(motif, MOTIF_WEIGHT, 1.0))
    cells = motif.reshape(8, 4, 8, 4).any(axis=(1, 3))  # the 8 x 8 latent grid
    assert np.array_equal(motif_weight(frame, pool=4)[0, 0].numpy(), np.where(cells, MOTIF_WEIGHT, 1.0))


@pytest.mark.slow
def test_stock_pipeline_draws_the_prompted_motif():
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    from macs_bench.world.synthetic import CLASSES
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_bench.world.sd import prompt
    from macs_bench.world.towers import image_tensor, load_towers, normalise

    pipe = StableDiffusionPipeline.from_pretrained(str(WORLD_DIR / SD_DIR), safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    prompts = [prompt([c]) for c in CLASSES for _ in range(3)]
    images = pipe(prompts, num_inference_steps=20, guidance_scale=3.0, height=32, width=32,
                  generator=torch.Generator().manual_seed(0)).images
    towers = load_towers()
    with torch.no_grad():
        scores = towers.image(image_tensor(images)) @ normalise(towers.text(list(CLASSES))).T
    drawn = scores.argmax(1).tolist()
    wanted = [i for i in range(len(CLASSES)) for _ in range(3)]
    assert sum(d == w for d, w in zip(drawn, wanted)) >= MIN_RIGHT  # of 36; chance is 3
