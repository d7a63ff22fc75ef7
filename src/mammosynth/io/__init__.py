"""Readers and writers: PNG/JPEG/TIFF/PGM (:mod:`.images`) and DICOM (:mod:`.dicom`)."""
from .images import ImageReadError, read_image, write_image

__all__ = ["ImageReadError", "read_image", "write_image"]
