"""Media: turn a manifest into clip audio (16 kHz mono WAV) and ground-truth frames (JPEG), with a ledger."""
