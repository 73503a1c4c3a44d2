"""``from macs_model import ...``: every entry point is the stage module's own function, imported on first use."""

import subprocess
import sys

import pytest

import macs_model

# derived, not copied: every public name of the front door (its __all__ but the version)
ENTRY_POINTS = [name for name in macs_model.__all__ if name != "__version__"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_front_door_names_the_stage_functions(name):
    """Each name is the stage module's own object (defined there, not a wrapper), and listed by dir()."""
    import importlib

    value = getattr(macs_model, name)
    assert callable(value)
    home = value.__module__
    assert home.startswith("macs_model.") and home != "macs_model", (name, home)
    assert getattr(importlib.import_module(home), name) is value
    assert name in dir(macs_model)


def test_front_door_covers_the_stages():
    assert {"train_separator", "separate", "train_generator", "generate", "AudioToImagePipeline",
            "reproduce"} <= set(ENTRY_POINTS)


def test_front_door_is_lazy_and_refuses_unknown_names():
    code = ("import sys, macs_model; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "assert 'macs_model.separation.api' not in sys.modules; "
            "from macs_model import separate; assert 'macs_model.separation.api' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        macs_model.nope  # noqa: B018
