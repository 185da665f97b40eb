import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared public datasets (``$HARMSCOPE_DATA`` or ../shared/data); skip if absent."""
    from harmscope.paths import data_dir as _d

    d = _d()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d}")
    return d


def _llama_cpp_cannot_run(model: str) -> str | None:
    """None when llama.cpp evaluates a multi-token prompt here, else why not (a build for
    another CPU dies with SIGILL on the first batched matrix product)."""
    import subprocess
    import sys

    code = (f"import llama_cpp; m = llama_cpp.Llama(model_path={model!r}, n_ctx=256, n_threads=1, verbose=False); "
            "m('one two three four five', max_tokens=1)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    if r.returncode == 0:
        return None
    return (f"llama-cpp-python cannot evaluate a prompt on this machine (exit {r.returncode}); rebuild it with "
            "CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install --force-reinstall --no-binary llama-cpp-python llama-cpp-python")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """URL (``http://127.0.0.1:PORT/v1``) of a real llama.cpp server serving the SmolLM2 GGUF."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from harmscope.models import smollm2_gguf

    why = _llama_cpp_cannot_run(str(smollm2_gguf()))
    if why:
        pytest.skip(why)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - a file, not a pipe: the server logs a lot
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--model_alias", "smollm2", "--n_ctx", "2048", "--n_threads", "1",
           "--n_threads_batch", "1"]  # one thread: spinning threads crawl on a loaded CPU
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not start within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
