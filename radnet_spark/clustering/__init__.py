"""Clustering: k-means (``mllib`` and ``sample`` engines), CLARA k-medoids, and the elbow for k."""

from radnet_spark.clustering.elbow import ElbowResult, choose_k, elbow_from_matrix, elbow_sweep, plot_elbow
from radnet_spark.clustering.kmeans import KMeansModel, assign_to_centres, fit_kmeans, fit_matrix
from radnet_spark.clustering.kmedoids import clara_matrix, fit_kmedoids

__all__ = [
    "ElbowResult",
    "KMeansModel",
    "assign_to_centres",
    "choose_k",
    "clara_matrix",
    "elbow_from_matrix",
    "elbow_sweep",
    "fit_kmeans",
    "fit_kmedoids",
    "fit_matrix",
    "plot_elbow",
]
