"""`python -m radnet_spark` is the same as the `radnet` console script."""

import sys

from radnet_spark.cli import main

sys.exit(main())
