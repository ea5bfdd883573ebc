"""isegm.utils.distributed.get_rank outside an initialised process group."""
import pytest

from isegm.utils.distributed import get_rank, is_initialized


@pytest.fixture(autouse=True)
def _no_group():
    assert not is_initialized()  # these tests cover the fallback only


def test_rank_alone_is_zero(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert get_rank() == 0


def test_rank_from_the_launchers_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert get_rank() == 3
    monkeypatch.setenv("RANK", "")
    assert get_rank() == 0
    monkeypatch.delenv("RANK")
    assert get_rank() == 0
    monkeypatch.setenv("RANK", "three")
    with pytest.raises(ValueError, match="RANK must be an integer, got 'three'"):
        get_rank()


def test_stray_rank_without_a_launcher_is_ignored(monkeypatch):
    """A single-process run stays rank 0 (master: checkpoints, INFO logs) whatever $RANK says."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "3")
    assert get_rank() == 0
