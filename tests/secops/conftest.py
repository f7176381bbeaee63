import pytest

# An event to handle, for the audit log's tests of handling.
from tests.disposal.conftest import brute_force_event  # noqa: F401


@pytest.fixture(autouse=True)
def _fast_passwords(fast_password_hashing):
    """Every test here uses the tenancy fixture; hash its passwords cheaply."""
