"""spark-submit entry point for `radnet label` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/label.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["label", *sys.argv[1:]]))
