"""KTP photo quality gate and normalisation (pure: stdlib, numpy, Pillow, pillow-heif, OpenCV).

Public API: :class:`PhotoPolicy` (limits and thresholds), :func:`normalise_photo` (bytes → :class:`PhotoResult`
or ``processors.reasons.Rejected``). Arguments and results are picklable, for process-pool workers.
"""

from processors.photo.pipeline import normalise_photo
from processors.photo.policy import PhotoPolicy
from processors.photo.result import PhotoResult

__all__ = ["PhotoPolicy", "PhotoResult", "normalise_photo"]
