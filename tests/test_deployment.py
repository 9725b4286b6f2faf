"""The production path end to end: scripts/serve.sh starts a real Prefect server + process worker, the
`build-symmv/demo` deployment from prefect.yaml runs on a tiny source, scripts/stop.sh takes it all down."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(name: str, env: dict, timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / name)], env=env, timeout=timeout_s,
                          capture_output=True, text=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.slow  # ~1.5-3 min on a loaded 2-core box: server start, deploy, worker, a real build
def test_build_deployment_runs_on_served_worker(tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from symmv.sources.demo import DemoCorpusConfig, build_demo_corpus

    source, out, home = tmp_path / "source", tmp_path / "dataset", tmp_path / "prefect-home"
    build_demo_corpus(DemoCorpusConfig(out=source, n_songs=2, excerpt_s=4, width=160, height=90,
                                       clips_dir=REPO / ".cache" / "clips"), progress=False)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(home), SYMMV_PREFECT_PORT=str(port), SYMMV_SERVE_TIMEOUT_S="240")
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        served = script("serve.sh", env, timeout_s=480)
        assert served.returncode == 0, served.stdout + served.stderr
        assert "build-symmv/demo" in served.stdout and (home / "pids" / "worker.pid").is_file()
        again = script("serve.sh", env, timeout_s=300)  # idempotent: nothing new is started
        assert again.returncode == 0 and "server already running" in again.stdout
        assert "worker already running" in again.stdout

        with temporary_settings({PREFECT_API_URL: api_url}):
            flow_run = run_deployment(
                "build-symmv/demo", timeout=600, poll_interval=1,
                parameters={"config": {"source_dir": str(source), "out": str(out), "progress": False,
                                        "card_dir": str(tmp_path / "cards"), "qc_min_duration_s": 3.0}})
        assert flow_run.state.is_completed(), flow_run.state
        report = json.loads((out / "build_report.json").read_text())
        assert report["songs"] == 2
        for table in ("songs", "notes"):
            assert list((out / table).glob("split=*/part-*.parquet")), table
        import symmv

        assert len(symmv.load("songs", root=out)) == 2
    finally:
        started = [int(p.read_text()) for p in (home / "pids").glob("*.pid")]
        stopped = script("stop.sh", env, timeout_s=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert len(started) == 2 and not any(alive(pid) for pid in started)
    assert not list((home / "pids").glob("*.pid"))
    with pytest.raises(OSError):  # the port is free again
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
