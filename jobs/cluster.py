"""spark-submit entry point for `radnet cluster` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/cluster.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["cluster", *sys.argv[1:]]))
