"""Datasets, augmentation and non-IID partitions (methods §3)."""

from psl_core.data.datasets import (
    DATASETS,
    Dataset,
    DatasetInfo,
    DatasetNotFoundError,
    clear_memory_cache,
    configure_data_paths,
    load_dataset,
    stratified_subset,
)
from psl_core.data.partitions import (
    PARTITION_SCHEMES,
    Partition,
    PartitionError,
    PartitionSchemeInfo,
    partition_labels,
)
from psl_core.data.transforms import augment_images

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "PARTITION_SCHEMES",
    "Partition",
    "PartitionError",
    "PartitionSchemeInfo",
    "partition_labels",
    "augment_images",
    "clear_memory_cache",
    "configure_data_paths",
    "load_dataset",
    "stratified_subset",
]
