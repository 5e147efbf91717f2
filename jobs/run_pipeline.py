"""spark-submit entry point: `spark-submit [--packages ...] jobs/run_pipeline.py [--env cluster] [--steps bronze]`."""

import sys

from cdp.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
