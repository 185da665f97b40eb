"""Stage 7: judging stored replies and building the score tables."""
