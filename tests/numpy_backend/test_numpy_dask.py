"""A pipeline recorded on small numpy examples replays unchanged on dask arrays."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph
import symgraph_numpy as snp

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

rng = np.random.default_rng(11)
TRAIN = rng.normal(3.0, 2.0, size=(500, 6))
MEAN, STD = TRAIN.mean(axis=0), TRAIN.std(axis=0)
PROJECTION = rng.standard_normal((6, 3))


def pipeline(x):
    """Standardise, project, reduce: numpy code with no dask-specific part."""
    z = (x - MEAN) / STD
    projected = z @ PROJECTION
    clipped = np.where(np.abs(projected) > 2.5, np.sign(projected) * 2.5, projected)
    return {
        "norm": np.linalg.norm(clipped, axis=1),
        "top": clipped.max(axis=1),
        "pairs": np.einsum("ij,ij->i", z[:, :3], projected),
        "both": np.concatenate([clipped, np.sin(z[:, ::2])], axis=1).astype(np.float32),
        "column_means": z.mean(axis=0),
        "flagged_rows": x[z[:, 0] > 1.0][:, [0, 2]],
        "count": (z > 0).sum(),
    }


def _refuse_to_compute(*args, **kwargs):
    raise AssertionError("the replay computed something; it must stay lazy")


@pytest.fixture(scope="module")
def model():
    x = snp.CustomInput(rng.normal(3.0, 2.0, size=(8, 6)))  # a small numpy example
    return symgraph.SymbolicModel(x, pipeline(x))


@pytest.fixture(scope="module")
def big():
    data = rng.normal(3.0, 2.0, size=(20_000, 6))
    return data, da.from_array(data, chunks=(3_000, 6))


def _assert_matches_numpy(lazy, data):
    expected = pipeline(data)
    assert lazy.keys() == expected.keys()
    computed = dask.compute(lazy)[0]
    for key, value in expected.items():
        assert isinstance(lazy[key], da.Array), key
        assert computed[key].dtype == value.dtype, key
        np.testing.assert_allclose(computed[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_replay_on_a_dask_array_stays_lazy_and_equals_numpy(model, big):
    data, array = big
    assert array.numblocks[0] > 1  # larger than any single chunk
    with dask.config.set(scheduler=_refuse_to_compute):
        lazy = model(array)
    assert lazy["norm"].chunks[0] == array.chunks[0]  # row-wise work stays chunked
    _assert_matches_numpy(lazy, data)


def test_input_checks_apply_to_dask_arrays(model, big):
    _, array = big
    with pytest.raises(ValueError, match="expected a 2-d array"):
        model(array[:, 0])
    with pytest.raises(ValueError, match="expected floating-point data"):
        model(array > 0)
    rows = array[array[:, 0] > 3.0]  # unknown row count: nan sizes pass the check
    assert np.isnan(rows.shape[0])
    x = snp.Input((None, 6))
    # (dask cannot concatenate chunks of unknown size, so this pipeline is simpler)
    norms = symgraph.SymbolicModel(x, np.linalg.norm((x - MEAN) / STD @ PROJECTION, axis=1))
    expected = np.linalg.norm((rows.compute() - MEAN) / STD @ PROJECTION, axis=1)
    np.testing.assert_allclose(norms(rows).compute(), expected, rtol=1e-12)


def test_inputs_with_unknown_sizes_replay_on_dask_too(big):
    data, array = big
    x = snp.Input((None, 6))
    model = symgraph.SymbolicModel(x, pipeline(x))
    _assert_matches_numpy(model(array), data)


def test_the_distributed_scheduler_computes_the_same_result(model, big):
    distributed = pytest.importorskip("distributed")
    data, array = big
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = model(array)
        futures = client.compute(lazy)
        computed = client.gather(futures)
        assert len(client.scheduler_info()["workers"]) == 2
    for key, value in pipeline(data).items():
        np.testing.assert_allclose(computed[key], value, rtol=1e-12, atol=1e-12, err_msg=key)
