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
import math
import re
from pathlib import Path
from urllib.parse import urlsplit

from map_core.errors import MapSuiteError

CONNECT_TIMEOUT = "20s"


def _local_workers(spec: str) -> int:
    text = spec.split(":", 1)[1]
    if not text.isdigit() or int(text) < 1:
        raise MapSuiteError(f"--scheduler local:N needs a whole number of workers N >= 1, got {spec!r}")
    return int(text)


SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")  # distributed's comm backends (distributed.comm.registry)
MAX_ADDRESS_CHARS = 1000


def read_scheduler_file(path) -> str:
    """The scheduler address in a Dask scheduler file (JSON with an "address" such as tcp://host:8786).

    Read here rather than by `distributed.Client(scheduler_file=...)`, which meets damaged bytes with
    an AssertionError; here any bad file is one MapSuiteError naming it. The fields the scheduler
    writes (``distributed.Scheduler.identity``) must have its types; the address must be one a
    client can dial: a known scheme, and a host with a port in 1-65535 (inproc: any name)."""
    try:
        info = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON, an integer past 4300 digits
        raise MapSuiteError(f"not a Dask scheduler file: {str(exc)[:160]}", path) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise MapSuiteError("not a Dask scheduler file: values nested too deeply", path) from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str) or "://" not in info["address"]:
        raise MapSuiteError('not a Dask scheduler file: no "address" such as tcp://host:8786', path)
    problem = _identity_problem(info) or _address_problem(info["address"])
    if problem:
        raise MapSuiteError(f"not a usable Dask scheduler file: {problem}", path)
    return info["address"]


def _identity_problem(info: dict) -> str:
    """What is wrong with the other fields of a scheduler file ('' if nothing); each may be absent."""
    def count(x):
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63

    expected = {"type": (lambda x: isinstance(x, str) and "Scheduler" in x, "a string naming a Scheduler"),
                "id": (lambda x: isinstance(x, str), "a string"),
                "services": (lambda x: isinstance(x, dict) and all(count(v) and v < 65536 for v in x.values()),
                             "an object of port numbers"),
                "started": (lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0,
                            "a time in seconds"),
                "workers": (lambda x: isinstance(x, dict), "an object"),
                **{key: (count, "a count") for key in ("n_workers", "total_threads", "total_memory")}}
    for key, (ok, what) in expected.items():
        try:
            fine = key not in info or ok(info[key])
        except OverflowError:  # math.isfinite of an integer too large for a float
            fine = False
        if not fine:
            return f'"{key}" must be {what}'
    return ""


def _address_problem(address: str) -> str:
    """What is wrong with a scheduler address ('' if nothing)."""
    if len(address) > MAX_ADDRESS_CHARS or any(c.isspace() or not c.isprintable() for c in address):
        return f"address {address[:60]!r} is longer than {MAX_ADDRESS_CHARS} characters or holds spaces or control characters"
    scheme, _, location = address.partition("://")
    if scheme not in SCHEMES:
        return f"address {address[:60]!r} has the scheme {scheme[:20]!r}, not one of {', '.join(SCHEMES)}"
    if scheme == "inproc":
        return "" if location else "address inproc:// names no process"
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port out of range or not a number, a broken [IPv6] host
        return f"address {address[:60]!r} is not HOST:PORT ({exc})"
    # a host name (letters, digits, dots, hyphens) or an IPv4 or [IPv6] address
    named = bool(host) and re.fullmatch(r"[A-Za-z0-9._-]+|[0-9a-fA-F:.]+(%[A-Za-z0-9]+)?", host) is not None
    if not named or port is None or not 0 < port < 65536 or parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"address {address[:60]!r} is not {scheme}://HOST:PORT with a port in 1-65535"
    return ""


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
