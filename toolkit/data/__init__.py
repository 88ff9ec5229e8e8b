"""Data sets: the reference catalog, user image folders, and their in-memory form."""

from .catalog import DATASETS, DatasetInfo, dataset_info, load_dataset
from .folders import load_image_folder
from .types import Dataset, Split, stratified_holdout

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "Split",
    "dataset_info",
    "load_dataset",
    "load_image_folder",
    "stratified_holdout",
]
