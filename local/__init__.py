"""The local stack and its tools. They run the layer's code, so the layer is put on the path here, once."""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "opsbot")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
