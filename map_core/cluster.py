"""Dask for the commands that scale out (`--scheduler`): the same tasks, on a cluster's workers.

A scheduler is named by one string:

- ``local:N``: a LocalCluster of N single-threaded worker processes on this machine;
- ``tcp://HOST:PORT`` (any address `distributed.Client` accepts): a running scheduler, e.g. from
  ``dask scheduler`` or a dask-jobqueue ``SLURMCluster``/``PBSCluster`` (its ``scheduler_address``);
- a path to a scheduler file (``dask scheduler --scheduler-file FILE``).

Workers must import this package and see the same file system as the client: tasks write their
outputs (generated batches, gate cache entries, MD runs) there and return only small values.
Which worker runs a task never changes its result: every task carries its own seed stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from map_core.errors import MapSuiteError

CONNECT_TIMEOUT = "20s"


def _local_workers(spec: str) -> int:
    text = spec.split(":", 1)[1]
    if not text.isdigit() or int(text) < 1:
        raise MapSuiteError(f"--scheduler local:N needs a whole number of workers N >= 1, got {spec!r}")
    return int(text)


def read_scheduler_file(path) -> str:
    """The scheduler address in a Dask scheduler file (JSON with an "address" such as tcp://host:8786).

    Read here rather than by `distributed.Client(scheduler_file=...)`, which meets damaged bytes with
    an AssertionError; here any bad file is one MapSuiteError naming it."""
    try:
        info = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise MapSuiteError(f"not a Dask scheduler file: {exc}", path) from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str) or "://" not in address:
        raise MapSuiteError('not a Dask scheduler file: no "address" such as tcp://host:8786', path)
    return address


@contextlib.contextmanager
def dask_client(spec: str | None):
    """A `distributed.Client` for `spec` (see the module docstring), closed on exit; None when `spec` is None."""
    if spec is None:
        yield None
        return
    from distributed import Client, LocalCluster  # here: every map-suite process would pay 0.4 s to import it

    cluster = None
    try:
        if spec.startswith("local:"):
            cluster = LocalCluster(n_workers=_local_workers(spec), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
        elif Path(spec).exists():
            client = Client(read_scheduler_file(spec), timeout=CONNECT_TIMEOUT)
        else:
            client = Client(spec, timeout=CONNECT_TIMEOUT)
    except MapSuiteError:
        raise
    except (OSError, ValueError, TypeError) as exc:  # unreachable address, timeout, unreadable scheduler file
        if cluster is not None:
            cluster.close()
        raise MapSuiteError(f"cannot reach the Dask scheduler {spec!r}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_tasks(client, fn, tasks, shared: dict | None = None, done=None) -> list:
    """[fn(*task, **shared) for task in tasks], in order; on the cluster's workers when `client` is given.

    shared: keyword arguments every task takes (a model, a profile), sent to each worker once.
    done: optional callable(finished, total) called as tasks finish.
    A task's exception is raised here, as itself (a MapSuiteError stays one line).
    """
    shared = shared or {}
    tasks = [tuple(t) for t in tasks]
    if client is None:
        out = []
        for task in tasks:
            out.append(fn(*task, **shared))
            if done is not None:
                done(len(out), len(tasks))
        return out
    if not tasks:
        return []
    from distributed import as_completed  # only runs that were given a cluster import distributed

    sent = {name: client.scatter(value, broadcast=True) for name, value in shared.items()}
    futures = [client.submit(fn, *task, **sent, pure=False) for task in tasks]
    try:
        for finished, future in enumerate(as_completed(futures), 1):
            if future.status == "error":
                future.result()  # raises the task's exception
            if done is not None:
                done(finished, len(tasks))
        return [f.result() for f in futures]
    except BaseException:
        client.cancel(futures)  # the other tasks would only write pieces nobody waits for
        raise
