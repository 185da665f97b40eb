# harmscope: `make demo` runs the whole product on embedded defaults; `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
export HARMSCOPE_DATA ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install lint perf clean browser fonts

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned to the CPU build on disk, so nothing pulls a CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	# GGML_NATIVE=OFF: a llama.cpp built for the build host's exact CPU dies with SIGILL in some sandboxes
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[neural,server,dask,test,onnx]'
	# the example plugin (a judge, a model adapter, a transform) that tests/test_plugin_example.py drives
	$(BIN)/pip install -q -e tests/plugin_example
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the HTML report test (Debian packages); skipped quietly when apt is unavailable.
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "chromium not installed: browser tests will be skipped"; }

# Wide-coverage fonts for PDF reports (CJK, Devanagari, emoji); optional, DejaVu from matplotlib is the base.
fonts:
	@test -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc || { (apt-get update -qq && apt-get install -y -qq fonts-wqy-zenhei fonts-noto-core fonts-symbola poppler-utils >/dev/null) || echo "extra fonts not installed: CJK/Devanagari/emoji fall back to boxes in PDFs"; }

demo: install fonts
	$(BIN)/harmscope demo --out out

test: install browser fonts
	$(BIN)/ruff check harmscope tests perf
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout 900

lint: install
	$(BIN)/ruff check harmscope tests perf

perf: install
	for f in perf/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache
