"""Track datasets, built by the coordinator and served to workers by sha256 (see README.md)."""

from coordinator.trackdata.build import (
    BuiltAssets,
    build_cpu_tiny,
    build_gpu_track_assets,
    build_track_assets,
)
from coordinator.trackdata.errors import TrackDataError
from coordinator.trackdata.parquet_source import (
    ParquetFile,
    ParquetSource,
    ParquetSourceError,
    ParquetTexts,
    fetch_parquet,
    iter_parquet_texts,
)
from coordinator.trackdata.split import SplitThresholds, is_val_document, split_thresholds, val_threshold
from coordinator.trackdata.store import asset_path
from coordinator.trackdata.tokenizer import EOT, EOT_ID, load_tokenizer

__all__ = [
    "EOT",
    "EOT_ID",
    "BuiltAssets",
    "ParquetFile",
    "ParquetSource",
    "ParquetSourceError",
    "ParquetTexts",
    "SplitThresholds",
    "TrackDataError",
    "asset_path",
    "build_cpu_tiny",
    "build_gpu_track_assets",
    "build_track_assets",
    "fetch_parquet",
    "is_val_document",
    "iter_parquet_texts",
    "load_tokenizer",
    "split_thresholds",
    "val_threshold",
]
