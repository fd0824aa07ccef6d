"""spark-submit entry point for `radnet features` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/features.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
