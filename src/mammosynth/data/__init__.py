"""Label schema, the prepared-dataset format, dataset adapters and preprocessing."""
from .prepared import DatasetWriter, PreparedDataset, parse_dataset_spec, read_manifest, split_for_patient
from .schema import CONDITION_AXES, Finding, ImageRecord, hash_patient_id

__all__ = [
    "CONDITION_AXES",
    "DatasetWriter",
    "Finding",
    "ImageRecord",
    "PreparedDataset",
    "hash_patient_id",
    "parse_dataset_spec",
    "read_manifest",
    "split_for_patient",
]
