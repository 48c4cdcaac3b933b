"""Fixtures of the review tests (the test city lives in :mod:`tests.review.city`)."""

from tests.review.city import City, city

__all__ = ["City", "city"]
