"""Reader-study statistics in numpy/scipy: ROC AUC with DeLong and jackknife
covariances, Obuchowski-Rockette analysis with Hillis degrees of freedom (random
readers and cases), a JAFROC-style localisation figure of merit, and the iMRMC / CSV
/ LRC score formats."""
from .formats import ReaderScores, read_csv, read_imrmc, read_lrc, write_csv, write_imrmc
from .localisation import LocalisationResult, Mark, afroc_fom, analyze_localisation
from .orh import ORHResult, SingleModalityResult, or_hillis, single_modality
from .roc import auc, auc_ci, delong_cov, jackknife_cov

__all__ = [
    "ReaderScores", "read_csv", "read_imrmc", "read_lrc", "write_csv", "write_imrmc",
    "LocalisationResult", "Mark", "afroc_fom", "analyze_localisation",
    "ORHResult", "SingleModalityResult", "or_hillis", "single_modality",
    "auc", "auc_ci", "delong_cov", "jackknife_cov",
]
