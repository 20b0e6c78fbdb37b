"""The reading benchmark drives both of the API's reading paths, each to the photo, on a request reused per round."""

from __future__ import annotations

import random

from intake.settings import Limits
from loadtests.bench_form import _request, read_once
from loadtests.payloads import BodyFactory, fresh_registration

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 400 + b"\xff\xd9"


async def test_both_paths_read_the_photo_again_and_again() -> None:
    factory, rng, limits = BodyFactory(), random.Random(1), Limits()
    bodies = [factory.body(fresh_registration(rng), PHOTO) for _ in range(3)]
    for declared in (True, False):
        request = _request(bodies[0], factory.content_type, limits, declared=declared)
        assert [await read_once(request, body, limits) for body in bodies] == [len(PHOTO)] * 3
