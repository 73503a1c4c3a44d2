"""Features: each image or audio file encoded once per encoder, cached on disk by content hash."""
