import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(fast_password_hashing):
    """Every test here uses the tenancy fixture; hash its passwords cheaply."""
