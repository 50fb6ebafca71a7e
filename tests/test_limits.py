"""The process-wide memory limit and the ResourceError it raises."""
import pytest

import minigraph as mg
from minigraph.limits import check_memory, format_bytes


@pytest.fixture(autouse=True)
def _no_limit_after():
    yield
    mg.set_memory_limit(None)


def test_set_and_get_memory_limit():
    assert mg.get_memory_limit() is None
    mg.set_memory_limit(1 << 20)
    assert mg.get_memory_limit() == 1 << 20
    mg.set_memory_limit(None)
    assert mg.get_memory_limit() is None


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-5, ValueError), (True, TypeError), (1.5, TypeError),
                                        ("1GB", TypeError)])
def test_set_memory_limit_rejects_non_positive_ints(bad, error):
    with pytest.raises(error, match="set_memory_limit"):
        mg.set_memory_limit(bad)
    assert mg.get_memory_limit() is None


def test_check_memory_raises_resource_error_with_numbers():
    mg.set_memory_limit(2048)
    check_memory(2048, "feed 'x'")
    with pytest.raises(mg.ResourceError, match=r"feed 'x' needs 3 KiB \(3072 bytes\), more than the memory limit "
                                               r"of 2 KiB \(2048 bytes\)\n  Hint: smaller") as info:
        check_memory(3072, "feed 'x'", hint="smaller batches")
    assert (info.value.estimate, info.value.limit) == (3072, 2048)
    assert isinstance(info.value, mg.MinigraphError) and isinstance(info.value, MemoryError)


def test_check_memory_explicit_limit_overrides_global():
    check_memory(10**12, "file")  # no global limit
    with pytest.raises(mg.ResourceError):
        check_memory(11, "file", limit=10)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5 GiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text
