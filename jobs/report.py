"""spark-submit entry point for `radnet report` (same arguments; see README "Running on a cluster").

    spark-submit --properties-file spark-defaults.conf jobs/report.py --help
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
