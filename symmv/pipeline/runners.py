"""Task runners by name: where a flow's mapped per-song tasks execute.

    threads    prefect's ThreadPoolTaskRunner: one process, `workers` threads (the default; I/O-bound
               steps and native code that releases the GIL, e.g. ffmpeg, onnxruntime, torch)
    processes  prefect's ProcessPoolTaskRunner: `workers` local processes (pure-Python CPU work)
    dask       prefect-dask's DaskTaskRunner: a LocalCluster of `workers` single-threaded worker
               processes, or an existing scheduler at `address` (tcp://host:8786) to scale out
    ray        prefect-ray's RayTaskRunner (optional extra): a local Ray or the cluster at `address`

Prefect binds a task runner to a flow when the flow is decorated, so a config-chosen runner is applied
with `flow.with_options(task_runner=make_task_runner(name, workers, address))`. Tasks sent to dask or
ray workers are pickled: they must live in an importable module (symmv, flows, annotators), and the
worker processes need the same PREFECT_API_URL as the flow (a served API, or the flow's ephemeral one,
which prefect-dask forwards).
"""
from __future__ import annotations

import importlib.metadata
from typing import Callable

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner


class RunnerUnavailable(RuntimeError):
    """The named runner needs a package that is not installed."""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _threads(workers: int, address: str | None) -> TaskRunner:
    return ThreadPoolTaskRunner(max_workers=workers)


def _processes(workers: int, address: str | None) -> TaskRunner:
    return ProcessPoolTaskRunner(max_workers=workers)


def _dask(workers: int, address: str | None) -> TaskRunner:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise RunnerUnavailable("task runner 'dask' needs prefect-dask: pip install -r requirements/orchestration.txt") from exc
    if address:
        return DaskTaskRunner(address=address)
    # One thread per worker process: our per-song work is CPU-bound Python/numpy, so threads inside a worker
    # would fight over the GIL. No dashboard: port 8787 may be taken by a parallel run, and nothing reads it.
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def _ray(workers: int, address: str | None) -> TaskRunner:
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:
        raise RunnerUnavailable("task runner 'ray' needs prefect-ray (not installed by default): pip install prefect-ray "
                                "-c requirements/constraints.txt") from exc
    if address:
        return RayTaskRunner(address=address)
    return RayTaskRunner(init_kwargs={"num_cpus": workers})


# name -> (constructor(workers, address), the distributions whose versions go into provenance)
RUNNERS: dict[str, tuple[Callable[[int, str | None], TaskRunner], tuple[str, ...]]] = {
    "threads": (_threads, ("prefect",)),
    "processes": (_processes, ("prefect",)),
    "dask": (_dask, ("prefect-dask", "distributed")),
    "ray": (_ray, ("prefect-ray", "ray")),
}


def make_task_runner(name: str = "threads", workers: int = 2, address: str | None = None) -> TaskRunner:
    """The task runner registered under `name`, running at most `workers` tasks at once.

    `address` (dask, ray) attaches to a running cluster instead of starting a local one; `workers` is then
    the cluster's business. Unknown names raise ValueError, a missing optional package RunnerUnavailable.
    """
    try:
        constructor, _ = RUNNERS[name]
    except KeyError:
        raise ValueError(f"unknown task runner {name!r}; known: {sorted(RUNNERS)}") from None
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if address and name not in ("dask", "ray"):
        raise ValueError(f"task runner {name!r} runs locally; an address is only for 'dask' or 'ray'")
    return constructor(workers, address or None)


def available_runners() -> list[str]:
    """Names whose packages are installed (what `make_task_runner` can build here)."""
    return [name for name, (_, dists) in RUNNERS.items() if _version(dists[0]) != "not installed"]


def provenance(name: str) -> str:
    """`"dask (prefect-dask 0.3.7, distributed 2026.8.0)"`: what a build report records about its runner."""
    _, dists = RUNNERS[name]
    return f"{name} ({', '.join(f'{d} {_version(d)}' for d in dists)})"
