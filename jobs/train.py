"""spark-submit entry point for `radnet train` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/train.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
