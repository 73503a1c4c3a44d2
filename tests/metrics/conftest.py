import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh seeded generator per test, so test data never depends on test order."""
    return np.random.default_rng(20240611)
