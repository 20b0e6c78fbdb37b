"""In-memory test corpora (generated deterministically; nothing is read from disk)."""
