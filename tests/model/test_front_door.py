"""``from macs_model import ...``: every entry point is the stage module's own function, imported on first use."""

import subprocess
import sys

import pytest

ENTRY_POINTS = {
    "train_separator": "macs_model.separation.api",
    "separate": "macs_model.separation.api",
    "train_generator": "macs_model.generation.api",
    "generate": "macs_model.generation.api",
    "generate_audio": "macs_model.generation.api",
    "AudioToImagePipeline": "macs_model.generation.audio_to_image",
    "import_release_generator": "macs_model.generation.release_import",
    "reproduce": "macs_model.reproduction",
    "TrainSummary": "macs_model.results",
    "Separation": "macs_model.results",
}


@pytest.mark.parametrize("name, module", ENTRY_POINTS.items())
def test_front_door_names_the_stage_functions(name, module):
    import importlib

    import macs_model

    value = getattr(macs_model, name)
    assert callable(value) and value is getattr(importlib.import_module(module), name)
    assert name in dir(macs_model)


def test_front_door_is_lazy_and_refuses_unknown_names():
    code = ("import sys, macs_model; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "assert 'macs_model.separation.api' not in sys.modules; "
            "from macs_model import separate; assert 'macs_model.separation.api' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import macs_model

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        macs_model.nope  # noqa: B018
