"""Beyond Python: a static web bundle (onnxruntime-web) and mobile-ready ORT-format models."""

from .bundle import WebBundle, build_web_bundle
from .mobile import MobileExport, export_mobile

__all__ = ["WebBundle", "build_web_bundle", "MobileExport", "export_mobile"]
