"""Stage 2 of the pipeline: probe generation (families, transforms, templates, lexicon,
presets) and importers of public benchmarks."""
