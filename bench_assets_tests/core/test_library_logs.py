"""Library warnings and log records go to the log file while `bench run` / `make demo` work."""

from __future__ import annotations

import logging
import warnings

from bench_assets.core.library_logs import library_output_to


def test_library_chatter_goes_to_the_file_and_handlers_come_back(tmp_path, capfd):
    from diffusers.utils import logging as diffusers_logging

    library = diffusers_logging.get_logger("diffusers.models.modeling_utils")
    before = logging.getLogger("diffusers").handlers[:]
    with library_output_to(tmp_path / "bench.log") as log_file:
        library.warning("There are modules in UNet2DConditionModel that should be kept in float32")
        warnings.warn("No pretrained weights loaded", UserWarning)
        logging.getLogger("root-level-library").warning("root logger record")
    text = log_file.read_text()
    for message in ("kept in float32", "No pretrained weights loaded", "root logger record"):
        assert message in text
    out, err = capfd.readouterr()
    assert "float32" not in out + err and "pretrained" not in out + err
    assert logging.getLogger("diffusers").handlers == before, "the library's own handlers are restored"
