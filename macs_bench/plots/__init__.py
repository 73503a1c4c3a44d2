"""Figures: the leaderboard's radar chart (:mod:`.radar`) and the qualitative sample grid (:mod:`.grid`)."""
