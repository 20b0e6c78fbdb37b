"""Map everything a decoder may throw at hostile input onto typed rejections.

Decoders (Pillow plugins, libjpeg, zlib, libwebp, libheif) raise a zoo of exceptions on crafted input
(``OSError``, ``SyntaxError``, ``ValueError``, ``struct.error``, ``EOFError``, ``MemoryError`` ...). Inside
:func:`decoder_errors` every one of them becomes ``Rejected(code)``; Pillow's decompression-bomb guard becomes
``too_many_pixels``. Warnings are silenced inside the block (so behaviour does not depend on the process's
warning filters, e.g. ``-W error``), except ``DecompressionBombWarning``, which is raised and rejected.
``warnings.catch_warnings`` is process-global state: fine in a single-threaded pool worker.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

from processors.reasons import Rejected


@contextmanager
def decoder_errors(code: str = "image_corrupt", max_pixels: int | None = None) -> Iterator[None]:
    """Run the block with decoder exceptions mapped to ``Rejected(code)`` (``Rejected`` passes through)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except Rejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected("too_many_pixels", threshold=max_pixels, detail={"error": type(exc).__name__}) from exc
        except Exception as exc:  # hostile input: any decoder failure is the input's fault
            raise Rejected(code, detail={"error": type(exc).__name__}) from exc
