"""Any audio-to-image model through one harness: the protocol, the registry and the runner.

``from macs_bench.models import AudioToImageModel, Item, load_model, run``.
"""

from macs_bench.models.protocol import AudioToImageModel, Item, RowInfo, model_facts, sample_seed
from macs_bench.models.registry import GROUP, load_model, registered
from macs_bench.models.runner import RunResult, run

__all__ = ["AudioToImageModel", "Item", "RowInfo", "model_facts", "sample_seed", "GROUP", "load_model",
           "registered", "RunResult", "run"]
