"""The spill store eval_scheduled uses (issue 12, item 4): what goes in comes back to the
bit, as a fresh array, whatever its layout and dtype; a key spilled again reuses its place
in the file; the file and its directory are gone afterwards."""

import os
import tempfile

import numpy as np
import pytest

from pycograd.graph.spill import SpillFileError, SpillStore, transfer_rate


def test_round_trips_to_the_bit():
    rng = np.random.default_rng(0)
    values = {
        1: rng.normal(size=(64, 33)),
        2: rng.normal(size=(64, 33)).T,                      # not contiguous
        3: rng.integers(0, 255, size=(7, 5), dtype=np.uint8),
        4: (rng.normal(size=9) + 1j * rng.normal(size=9)).astype(np.complex64),
        5: np.zeros((0, 4)),                                 # empty
        6: np.float64(2.5),                                  # a numpy scalar stays as is
        7: np.array(3.0),
    }
    with SpillStore() as store:
        for k, v in values.items():
            store.put(k, v)
        for k, v in values.items():
            back = store.get(k)
            assert type(back) is type(v) and np.shape(back) == np.shape(v)
            assert np.asarray(back).dtype == np.asarray(v).dtype
            assert np.array_equal(back, v)
            if isinstance(v, np.ndarray) and v.size:
                assert not np.shares_memory(back, v)
        path = os.path.join(store._dir, "spill")
        assert os.path.getsize(path) == sum(v.nbytes for k, v in values.items()
                                            if k not in (6,))
    assert not os.path.exists(os.path.dirname(path))


def test_a_key_spilled_again_reuses_its_place():
    a, b, c = np.arange(1000.0), -np.arange(1000.0), np.ones(3000)
    with SpillStore() as store:
        store.put(0, a)
        store.put(1, c)
        store.put(0, b)                  # same size: overwritten where it was
        size = os.path.getsize(os.path.join(store._dir, "spill"))
        assert size == a.nbytes + c.nbytes
        assert np.array_equal(store.get(0), b) and np.array_equal(store.get(1), c)
        store.put(1, a)                  # another size: appended
        assert np.array_equal(store.get(1), a) and np.array_equal(store.get(0), b)


def test_transfer_rate_is_positive_and_leaves_nothing():
    before = set(os.listdir(tempfile.gettempdir()))
    assert transfer_rate(2 ** 16, rounds=3) > 0
    assert {d for d in os.listdir(tempfile.gettempdir())
            if d.startswith("pycograd-spill-")} <= before


def test_a_short_spill_file_raises_a_named_error():
    with SpillStore() as store:
        store.put(0, np.arange(100.0))
        os.truncate(os.path.join(store._dir, "spill"), 10)
        with pytest.raises(SpillFileError, match="ended 790 bytes before"):
            store.get(0)
