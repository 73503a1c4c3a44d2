"""A model outside macs: one flat colour per clip from its loudness, plus noise from the item's own seed."""

import os

import numpy as np


class ColourModel:
    name = "colour"

    def __init__(self, trained=(), unknown_training=False):
        self.trained = set(trained)
        self.unknown_training = unknown_training
        self.calls = []

    def provenance(self):
        return {"weights": "none", "trained_on": sorted(self.trained)}

    def trained_ids(self):
        return None if self.unknown_training else self.trained

    def generate(self, items, seed):
        self.calls.append([item.sample_id for item in items])
        if os.environ.get("COLOUR_LOG"):  # which process drew what (the slicing test)
            with open(os.environ["COLOUR_LOG"], "a", encoding="utf-8") as fh:
                fh.writelines(f"{os.environ.get('RANK', '0')} {item.sample_id}\n" for item in items)
        images = []
        for item in items:
            level = int(min(255, 2000 * float(np.abs(item.waveform).mean())))
            rng = np.random.default_rng(item.seed)
            noise = rng.integers(0, 40, (32, 32, 3))
            images.append(np.clip(np.full((32, 32, 3), [level, 128, 255 - level]) + noise, 0, 255).astype(np.uint8))
        return images
