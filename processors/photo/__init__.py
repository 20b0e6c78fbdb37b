"""KTP photo quality gate and normalisation (pure: stdlib, numpy, Pillow, pillow-heif, OpenCV).

Public API: :class:`PhotoPolicy` (limits and thresholds), :func:`normalise_photo` (bytes → :class:`PhotoResult`
or ``processors.reasons.Rejected``). Arguments and results are picklable, for process-pool workers.
"""

import cv2

from processors.photo.pipeline import normalise_photo
from processors.photo.policy import PhotoPolicy
from processors.photo.result import PhotoResult


def one_thread_per_process() -> None:
    """Make this process's image work single-threaded (OpenCV's own thread pool off).

    For pool workers: the pool already has one process per core, so OpenCV threads would only oversubscribe
    the cores and make the work of one photo contend with the others'."""
    cv2.setNumThreads(1)


__all__ = ["PhotoPolicy", "PhotoResult", "normalise_photo", "one_thread_per_process"]
