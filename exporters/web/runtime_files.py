"""onnxruntime-web's runtime files, taken from its npm package at build time and cached.

The bundle must work offline (a USB stick, any static host), so the files are copied into it; nothing
is fetched from a CDN when the page runs. npm is needed once per version, to fill the cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ...runtime import environment
from ..errors import ExportError

VERSION = "1.30.0"  # onnxruntime-web on npm (the Python wheel is 1.31; the web build trails it)
PACKAGE = "onnxruntime-web"
# The WASM-only build (no WebGL/WebGPU code): the ES module, its worker/loader module and the SIMD+threads binary.
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
NOTICE = "NOTICE.txt"


def cache_dir(version: str = VERSION) -> Path:
    """<edgecls cache>/onnxruntime-web/<version>/ (the cache: $EDGECLS_CACHE_DIR, else ~/.cache/edgecls)."""
    return environment.cache_dir(PACKAGE) / version


def cached(version: str = VERSION) -> bool:
    folder = cache_dir(version)
    return all((folder / name).is_file() for name in (*FILES, NOTICE))


def ensure_runtime(version: str = VERSION, log=lambda message: None) -> Path:
    """The folder holding the runtime files; runs `npm pack` once if they are not cached yet."""
    folder = cache_dir(version)
    if cached(version):
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise ExportError(f"--web needs onnxruntime-web {version} from the npm registry, and npm is not installed. "
                          "Install Node.js and npm (Debian/Ubuntu: apt-get install -y npm), or put the files "
                          f"{', '.join(FILES)} from the {PACKAGE}@{version} package into {folder}/")
    log(f"fetching {PACKAGE}@{version} from the npm registry (once; cached in {folder})")
    with tempfile.TemporaryDirectory(prefix="edgecls-npm-") as tmp:
        try:
            done = subprocess.run([npm, "pack", f"{PACKAGE}@{version}", "--silent"], cwd=tmp, capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise ExportError(f"npm pack {PACKAGE}@{version} did not finish in 10 minutes") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ExportError(f"npm pack {PACKAGE}@{version} failed (is the npm registry reachable?): "
                              + " | ".join(detail))
        _extract(tarballs[0], folder, version)
    return folder


def _extract(tarball: Path, folder: Path, version: str) -> None:
    """Copy only the needed dist files (by exact member name: nothing else in the archive is written)."""
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_parent(folder)))
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            package = json.load(archive.extractfile("package/package.json"))
            for name in FILES:
                member = archive.getmember(f"package/dist/{name}")
                if not member.isfile():
                    raise ExportError(f"{tarball.name}: package/dist/{name} is not a regular file")
                with archive.extractfile(member) as src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        (staging / NOTICE).write_text(
            f"{package.get('name')} {package.get('version')} - {package.get('description', '')}\n"
            f"License: {package.get('license')} (Copyright (c) Microsoft Corporation)\n"
            f"Source: {package.get('homepage') or 'https://github.com/microsoft/onnxruntime'}\n"
            f"Files: {', '.join(FILES)} from the npm package's dist/ folder.\n")
        staging.chmod(0o755)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except (KeyError, tarfile.TarError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"{tarball.name}: not the expected {PACKAGE} package ({exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent
