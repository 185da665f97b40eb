"""Run-engine throughput: in-process model, loopback HTTP server, SmolLM2 via hf and llama.cpp.

Usage: python perf/harness.py [--n 10000] [--http-n 5000] [--skip-smollm2]
Prints a table. Targets: engine >= 2,000 probes/s in-process, >= 500 req/s over HTTP at
concurrency 64. Figures depend heavily on machine load: say so when quoting them.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harmscope.benchmarks.runs.engine import run_probes  # noqa: E402
from harmscope.benchmarks.runs.store import Store  # noqa: E402
from harmscope.models import BaselineAdapter, GenParams, load_model, smollm2_gguf  # noqa: E402
from harmscope.models.testing import make_probe_set  # noqa: E402


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def _timed(ps, model, params, concurrency, tmp: Path, name: str) -> tuple[float, dict]:
    st = Store(tmp / f"{name}.sqlite")
    t0 = time.perf_counter()
    m = run_probes(ps, model, st, params=params, concurrency=concurrency, progress=False, timeout=300)
    dt = time.perf_counter() - t0
    toks = sum(r.completion_tokens or 0 for r in st.replies(m.run_id))
    return dt, {"answered": m.counts["answered"], "failed": m.counts["failed"], "tokens": toks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000, help="probes for the in-process run")
    ap.add_argument("--http-n", type=int, default=5_000, help="probes for the HTTP run")
    ap.add_argument("--smol-n", type=int, default=8, help="probes for each SmolLM2 measurement")
    ap.add_argument("--smol-tokens", type=int, default=32, help="max tokens per SmolLM2 reply")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for torch and llama.cpp (1 is fastest on a shared, loaded CPU)")
    ap.add_argument("--skip-smollm2", action="store_true")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="harmscope-perf-"))

    # 1. in-process instant model
    ps = make_probe_set(args.n)
    rss0 = _maxrss_mib()
    dt, c = _timed(ps, BaselineAdapter("echo"), GenParams(), 64, tmp, "inproc")
    rows.append((f"engine, in-process echo, {args.n} probes, conc 64", f"{args.n / dt:,.0f} probes/s",
                 f"{dt:.2f} s, peak RSS {_maxrss_mib():.0f} MiB (+{_maxrss_mib() - rss0:.0f}), "
                 f"answered {c['answered']}"))
    t0 = time.perf_counter()
    run_probes(ps, BaselineAdapter("echo"), Store(tmp / "inproc.sqlite"), concurrency=64, progress=False)
    rows.append(("resume check of the same run (all cached)", f"{args.n / (time.perf_counter() - t0):,.0f} probes/s",
                 ""))

    # 2. loopback HTTP server (separate process) at concurrency 64
    port = _free_port()
    srv = subprocess.Popen([sys.executable, "-m", "harmscope.models.testing", "--port", str(port)],
                           stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait(url, srv)
        hps = make_probe_set(args.http_n, prefix="http question")
        cpu0 = _cpu_s()
        dt, c = _timed(hps, load_model(f"openai:fake@{url}"), GenParams(max_tokens=16), 64, tmp, "http")
        cpu = _cpu_s() - cpu0
        rows.append((f"engine, loopback HTTP server, {args.http_n} probes, conc 64",
                     f"{args.http_n / dt:,.0f} req/s", f"{dt:.2f} s, answered {c['answered']}, failed {c['failed']}"))
        rows.append(("  client CPU per request (ceiling on one free core)", f"{cpu / args.http_n * 1000:.2f} ms",
                     f"= {args.http_n / cpu:,.0f} req/s per client core"))
    finally:
        srv.terminate()
        srv.wait(10)

    # 3. SmolLM2 tokens/s
    if not args.skip_smollm2:
        sps = make_probe_set(args.smol_n, prefix="Write one sentence about")
        params = GenParams(max_tokens=args.smol_tokens)
        hf = load_model({"spec": "local:smollm2", "threads": args.threads})
        t0 = time.perf_counter()
        hf._load()
        rows.append(("SmolLM2 hf load (GGUF dequantised)", f"{time.perf_counter() - t0:.1f} s", ""))
        for conc in (1, 4):
            hf.batch_size = conc
            dt, c = _timed(sps, hf, params, conc, tmp, f"hf{conc}")
            rows.append((f"SmolLM2 via hf, conc {conc} (batch {conc}), {args.smol_n} probes",
                         f"{c['tokens'] / dt:,.1f} tokens/s", f"{c['tokens']} tokens in {dt:.1f} s"))
        port = _free_port()
        log = open(tmp / "llama.log", "w")  # noqa: SIM115
        llama = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
             "--port", str(port), "--model_alias", "smollm2", "--n_ctx", "4096",
             "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads)],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            _wait(url, llama)
            for conc in (1, 4):
                dt, c = _timed(sps, load_model(f"openai:smollm2@{url}"), params, conc, tmp, f"llama{conc}")
                rows.append((f"SmolLM2 via llama.cpp server, conc {conc}, {args.smol_n} probes",
                             f"{c['tokens'] / dt:,.1f} tokens/s", f"{c['tokens']} tokens in {dt:.1f} s"))
        finally:
            llama.terminate()
            llama.wait(15)
            log.close()

    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'figure':>18}  detail")
    for name, fig, detail in rows:
        print(f"{name:<{w}}  {fig:>18}  {detail}")
    print(f"(cpu cores: {os.cpu_count()}, threads {args.threads}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
