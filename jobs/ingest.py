"""spark-submit entry point for the ingest stage.

    spark-submit --properties-file spark-defaults.conf jobs/ingest.py \
        --dicom /mnt/pacs/dump --diagnoses /mnt/pacs/diagnoses.csv --out /mnt/warehouse
"""

import sys

from radnet_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
