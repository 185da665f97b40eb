"""Class 4: two run processes on one run; a good reply is never replaced by a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harmscope.benchmarks.runs.store import Store
from harmscope.types import Response
from tests.hardening.hostile_server import HostileServer


def test_failure_never_replaces_a_good_reply(tmp_path):
    s = Store(tmp_path / "s.sqlite")
    good = Response(probe_id="p", sample=0, model="m", text="a good answer")
    bad = Response(probe_id="p", sample=0, model="m", error="timeout after 5s")
    s.put_reply("run", "k1", good)
    s.put_reply("run", "k1", bad)
    assert s.get_reply("k1").text == "a good answer" and s.get_reply("k1").ok
    s.put_reply("run", "k2", bad)
    s.put_reply("run", "k2", good)  # a failure is replaced by a later good reply
    assert s.get_reply("k2").ok
    assert s.reply_status(["k1", "k2"]) == {"k1": True, "k2": True}


def test_second_run_process_on_the_same_run_is_refused(probes_file, tmp_path):
    env = {**os.environ, "CI": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with HostileServer("slow", delay=30) as srv:  # replies are held until the gate opens
        cmd = [sys.executable, "-m", "harmscope.cli", "run", "--model", f"openai:m@{srv.url}", "--probes",
               str(probes_file), "--out", str(tmp_path / "run"), "--concurrency", "1", "-q"]
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while srv.requests < 2 and time.monotonic() < deadline:  # preflight + first probe in flight
                time.sleep(0.05)
            second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        finally:
            srv.gate.set()
            out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    errs = [ln for ln in second.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and "already running in process" in errs[0] and str(first.pid) in errs[0]
    # every probe asked exactly once (plus one preflight), and the run is complete
    assert srv.requests == 1 + 4
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["counts"]["answered"] == 4 and manifest["counts"]["failed"] == 0
