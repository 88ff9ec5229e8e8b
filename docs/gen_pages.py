"""Build-time pages (run by mkdocs-gen-files): the reference from the code, the benchmarks from the result files."""

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_benchmarks  # noqa: E402
import gen_reference  # noqa: E402

for module in (gen_reference, gen_benchmarks):
    for path, content in module.all_pages().items():
        with mkdocs_gen_files.open(path, "wb" if isinstance(content, bytes) else "w") as fh:
            fh.write(content)
