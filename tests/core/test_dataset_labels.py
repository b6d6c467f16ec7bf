"""load_labels gives exactly the labels load_dataset gives (same subsets, same errors), without images."""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.data import DatasetNotFoundError, load_dataset, load_labels


@pytest.mark.parametrize("train_limit", [None, 300, 1000])
@pytest.mark.parametrize("seed", [0, 7])
def test_labels_match_the_full_load(train_limit, seed):
    full = load_dataset("digits", train_limit=train_limit, test_limit=50, seed=seed)
    light = load_labels("digits", train_limit=train_limit, test_limit=50, seed=seed)
    assert np.array_equal(light.y_train, full.y_train.numpy())
    assert light.y_train.dtype == np.int64 and light.test_size == len(full.y_test)
    assert light.input_shape == full.input_shape and light.class_names == full.class_names
    assert light.num_classes == full.num_classes


def test_same_errors_as_the_full_load(tmp_path):
    for kwargs in ({"train_limit": 0}, {"test_limit": -3}):
        with pytest.raises(ValueError, match="must be a positive integer"):
            load_labels("digits", **kwargs)
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_labels("nope")
    with pytest.raises(DatasetNotFoundError):
        load_labels("cifar10", data_dir=str(tmp_path))
