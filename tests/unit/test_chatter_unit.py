"""Libraries' chatter inside the exporters: off the terminal, on the edgecls.exporters logger at DEBUG."""

from __future__ import annotations

import logging

from edgecls.exporters.chatter import LOGGER, library_chatter


def test_root_logger_warnings_and_prints_go_to_the_debug_logger(capfd):
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.levelname} {record.getMessage()}")

    keep, root = Keep(), logging.getLogger()
    handlers_before = list(root.handlers)
    LOGGER.addHandler(keep)
    LOGGER.setLevel(logging.DEBUG)
    try:
        with library_chatter():
            logging.warning("Please consider to run pre-processing before quantization.")  # as onnxruntime does
            logging.getLogger("onnxruntime.quantization").info("calibrating")
            print("Collecting tensor data and making histogram ...")
    finally:
        LOGGER.removeHandler(keep)
        LOGGER.setLevel(logging.NOTSET)
    out, err = capfd.readouterr()
    assert out == "" and "Please consider" not in err
    assert seen[0] == "DEBUG root: Please consider to run pre-processing before quantization."
    assert "DEBUG Collecting tensor data and making histogram ..." in seen
    assert root.handlers == handlers_before  # nothing left behind, and no default stderr handler installed
