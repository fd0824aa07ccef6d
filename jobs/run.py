"""spark-submit entry point for `radnet run` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/run.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
