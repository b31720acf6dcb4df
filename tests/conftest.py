import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """The book built at the smoke profile, once per session: its HTML directory (_build/html)."""
    if os.environ.get("REGUTILS_SKIP_BOOK") == "1":
        pytest.skip("REGUTILS_SKIP_BOOK=1")
    env = dict(os.environ, REGUTILS_CACHE=str(tmp_path_factory.mktemp("cache")), REGUTILS_PROGRESS="0")
    env.pop("REGUTILS_SCORECARD_DIR", None)
    # two chapters at once, each a single-threaded process: the way make book runs them
    subprocess.run([sys.executable, "-m", "regutils", "book", "--profile", "smoke", "--jobs", "2"], cwd=ROOT, env=env,
                   check=True)
    return ROOT / "_build" / "html"


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
