"""Packaging for radnet-spark.

Version ranges are the ones tested together (see DESIGN "Measured on this machine");
`constraints.txt` pins the exact set CI and `make` install.
"""

from pathlib import Path

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "pyarrow>=18,<27",
    "pandas>=2.2,<3",  # pyspark 4.3 warns that pandas 3 is not yet supported
    "numpy>=2.0,<3",
    "scipy>=1.13",
    "torch>=2.4,<=2.13.0",  # 2.13.0 CPU lies on disk here; wider ranges can pull a CUDA build
    "pydicom>=3.0,<4",
    "dicom-anonymizer>=2.1,<3",  # BSD-3: the PS3.15 attribute table we de-identify with
    # Permissive pixel decoders (MIT / Apache-2.0) for compressed transfer syntaxes.
    "pylibjpeg>=2.0,<3",
    "pylibjpeg-openjpeg>=2.3,<3",
    "pylibjpeg-rle>=2.0,<3",
    "python-gdcm>=3.0.24,<4",
    "gensim>=4.3,<5",
    "scikit-learn>=1.5,<2",
    "kneed>=0.8,<1",
    "faiss-cpu>=1.8,<2",
    "croatian-stemmer>=0.4,<1",
    "snowballstemmer>=2.2,<4",
    "stopwordsiso>=0.7,<1",  # MIT: stop-word lists (Croatian included) kept off the cluster cards
    "pyyaml>=6,<7",
    "matplotlib>=3.8,<4",
    "pillow>=10,<14",  # resizing in the 8-bit export, report mosaics
    "tqdm>=4.66,<5",
    "psutil>=5.9,<8",
    "Faker>=40,<41",  # MIT: given names and surnames per locale, the names lexicon of de-identification
]

EXTRAS_REQUIRE = {
    # Spark itself: a laptop or a bare cluster installs it with the package; Databricks and managed
    # clusters bring their own, which a pip-installed pyspark would shadow and break.
    "spark": ["pyspark>=4.0,<5"],
    # GPL-3.0: decodes 12-bit "JPEG Extended" and JPEG-LS; opt in knowingly.
    "gpl-license": ["pylibjpeg-libjpeg>=2.1,<3"],
    # DICOM dumps and diagnoses on object storage, read by the tasks through fsspec: install the
    # store's extra on the driver and every executor. s3fs and gcsfs release in step with fsspec.
    "s3": ["s3fs>=2024.6"],
    "gcs": ["gcsfs>=2024.6"],
    "azure": ["adlfs>=2024.4"],
    # Pipeline versions as MLflow runs and registered models; SQLAlchemy and Alembic serve a local
    # sqlite:/// tracking store (a tracking server or Databricks needs only the client).
    "mlflow": ["mlflow-skinny>=3.4,<4", "sqlalchemy>=2,<3", "alembic>=1.13,<2"],
    # The pretrained_text view: a local sentence-transformers folder (Apache-2.0 library; the model's own
    # licence is on its card); the view pads every text to a fixed length through 6.x's processing_kwargs.
    # No [timm] or [open-clip] extra: both require torchvision, which this stack does not install (their
    # models come in exported to TorchScript / torch.export, see docs/pretrained.md).
    "sentence-transformers": ["sentence-transformers>=6.2,<7"],
    "dev": [
        "pytest>=8,<10",
        "ruff>=0.6",
        "pydicom-data",
        "nbformat>=5",
        # A real S3 server on 127.0.0.1 for the object-storage tests (moto's server mode needs Flask).
        "moto[s3]>=5.1,<6",
        "flask>=3,<4",
        "flask-cors>=5,<7",
    ],
}

setup(
    name="radnet-spark",
    version="0.1.0",
    description="Unsupervised labelling of a hospital PACS dump on Apache Spark (RadiologyNET method).",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["radnet_spark", "radnet_spark.*"]),
    package_data={"radnet_spark": ["tags/*.yaml", "conf/*.conf", "conf/*.properties"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["radnet=radnet_spark.cli:main"]},
)
