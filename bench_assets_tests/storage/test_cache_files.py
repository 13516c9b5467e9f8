"""A cache file is replaced whole or not at all, and no temporary file is left either way."""

from __future__ import annotations

import pytest

from bench_assets.storage.cache_files import replacing


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / ".cache" / "sums.parquet"
    with replacing(target) as tmp:
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the disk filled up")
    assert target.read_text() == "first"
    with replacing(target, ".tmp.npz") as tmp:
        assert tmp.name.endswith(".tmp.npz") and tmp.parent == target.parent
        tmp.write_text("second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["sums.parquet"]
