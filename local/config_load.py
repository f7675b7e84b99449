"""Reload a config directory into the running local stack's store, as `make config` loads one on AWS.

    python -m local.config_load [DIR] [--port 3000]

It asks the stack on --port (PORT) where its moto is and which directory it loaded (the default DIR), then runs the
config CLI's `load` against the stack's ConfigTable there (opsbot.config_cli). The functions see it within
CONFIG_CACHE_SECONDS.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

from local import template as template_module  # noqa: E402
from local.ports import running_or_told  # noqa: E402
from local.stack import REGION, local_names  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.config_load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", nargs="?", default="", help="a config directory (default: the stack's own)")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    args = parser.parse_args(argv)
    stack = running_or_told(args.port)
    if stack is None:
        return 2
    moto = stack["urls"]["moto"]
    os.environ.update(
        {
            "OPSBOT_STAGE": "local",
            "CONFIG_TABLE": local_names(template_module.load(ROOT / "template.yaml"), moto)["ConfigTable"],
            "AWS_ENDPOINT_URL": moto,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }
    )
    from opsbot import config_cli

    return config_cli.main(["load", args.directory or stack["config"]])


if __name__ == "__main__":
    sys.exit(main())
