"""Stage 4: the run engine and the SQLite store of replies."""
