"""spark-submit entry point for `radnet embed` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/embed.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["embed", *sys.argv[1:]]))
