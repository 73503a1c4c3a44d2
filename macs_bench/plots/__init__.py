"""Figures beside the boards: the qualitative sample grid (:mod:`.grid`). The radar chart is board rendering:
:mod:`macs_bench.boards.radar`."""
