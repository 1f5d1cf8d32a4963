"""Fixtures shared by every tier: each imports its library only when a test asks for it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def no_collection() -> Iterator[None]:
    """The garbage collector off for the test: reference counting alone must free what is dropped."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: How long a test waits for the local cluster before failing rather than hanging.
CLUSTER_TIMEOUT_S = 30


# Module-scoped: a cluster left running for the rest of the session would allocate
# in the background and disturb the memory tests that follow.
@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A ``dask.distributed`` client of a local cluster of two worker processes, one per test module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT_S)
        yield client
