"""Stage 2 of the pipeline: probe generation (families, transforms, templates, lexicon,
presets) and importers of public benchmarks."""

# registers the BOLD and HolisticBias import formats (harmscope probes import --format bold ...)
from harmscope.benchmarks.probes import distributional  # noqa: E402,F401
