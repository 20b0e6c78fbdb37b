"""KTP photo quality gate and normalisation (pure: stdlib, numpy, Pillow, pillow-heif, OpenCV).

Public API: :class:`PhotoPolicy` (limits and thresholds), :func:`processors.photo.pipeline.normalise_photo`
(bytes → :class:`PhotoResult` or ``processors.reasons.Rejected``). Arguments and results are picklable, for
process-pool workers.

Importing this package (or :mod:`processors.photo.policy`) loads no image library: the settings describe the
policy without loading OpenCV, numpy or Pillow; :mod:`processors.photo.pipeline` loads them.
"""

from processors.photo.policy import PhotoPolicy
from processors.photo.result import PhotoResult

PhotoBytes = bytes | memoryview
"""A photo as received: ``bytes``, or a read-only view of the buffer that holds it (the API's photo is a view of the
request body it was read in, not a copy). Whatever reads it indexes and slices it alike."""

__all__ = ["PhotoBytes", "PhotoPolicy", "PhotoResult"]
