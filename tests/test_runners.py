"""The task-runner registry builds every installed runner, and a real flow runs on a 2-worker Dask cluster."""
from __future__ import annotations

import os
import sys

import pytest
from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from symmv.pipeline.runners import RUNNERS, RunnerUnavailable, available_runners, make_task_runner, provenance


def test_registry_builds_each_available_runner():
    assert {"threads", "processes", "dask"} <= set(available_runners())
    threads = make_task_runner("threads", workers=3)
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    assert isinstance(make_task_runner("processes", workers=2), ProcessPoolTaskRunner)
    dask = make_task_runner("dask", workers=2)
    assert type(dask).__name__ == "DaskTaskRunner"
    assert dask.cluster_kwargs["n_workers"] == 2 and dask.cluster_kwargs["threads_per_worker"] == 1
    assert make_task_runner("dask", address="tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"
    assert provenance("dask").startswith("dask (prefect-dask 0.3.7, distributed ")


def test_registry_rejects_unknown_and_missing():
    with pytest.raises(ValueError, match="known: "):
        make_task_runner("spark")
    with pytest.raises(ValueError, match="address"):
        make_task_runner("threads", address="tcp://x:1")
    if "ray" not in available_runners():
        with pytest.raises(RunnerUnavailable, match="prefect-ray"):
            make_task_runner("ray")
    assert set(RUNNERS) == {"threads", "processes", "dask", "ray"}


@task
def square_in_worker(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@flow
def sum_of_squares(n: int) -> tuple[int, set[int]]:
    results = [f.result() for f in square_in_worker.map(list(range(n)))]
    return sum(r for r, _ in results), {pid for _, pid in results}


@pytest.mark.slow  # 45-90 s here: the flow's ephemeral API plus two worker processes that import prefect
def test_flow_runs_on_two_dask_workers():
    import cloudpickle

    # Dask workers are separate processes that cannot import this test module: send its tasks by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        total, pids = sum_of_squares.with_options(task_runner=make_task_runner("dask", workers=2))(12)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert total == sum(x * x for x in range(12))  # 506
    assert pids and os.getpid() not in pids and len(pids) <= 2  # ran in (at most 2) worker processes
