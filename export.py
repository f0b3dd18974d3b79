"""Export a trained run for TF Serving: `python export.py --run-dir RUN [--base-dir saved_models] [--name NAME]`.

Writes the next version, `<base-dir>/<name>/<version>/`, atomically (see
serving/export.py), and prints its path. The name defaults to the run's `export.name`,
empty unless set: the run directory's own name, so an export lands in a served folder
(`--name chatbot`) only when asked. Every call makes a new version; `train.py` exports
once at the end of a run.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="a run directory written by train.py")
    parser.add_argument("--base-dir", help="default: the run's export.base_dir (saved_models)")
    parser.add_argument("--name", help="the folder under the base dir (default: the run's export.name, else the "
                                       "run directory's name); a server watching <base-dir>/<name> serves it next")
    args = parser.parse_args(argv)
    from serving.export import export_run

    print(export_run(args.run_dir, base_dir=args.base_dir, name=args.name))
    return 0


if __name__ == "__main__":
    from errors import run_command

    sys.exit(run_command("export.py", main))
