import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread: no oversubscription on a shared machine, and the same kernels in a subprocess."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(items):
    """Every test of the built book is slow: it needs the smoke build (minutes)."""
    for item in items:
        if "book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
