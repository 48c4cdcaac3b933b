"""The as-built archive: OCFL 1.1 objects on a storage backend, history in PostGIS, an SM3 ledger.

``Archive`` puts, gets and deletes versions; :func:`verify` checks everything; :func:`archive_review`
archives an approved review's file; :func:`export_bag` writes a BagIt package; :func:`diff_versions`
compares two versions by GlobalId.
"""

from cim.archive.diff import diff_versions
from cim.archive.export import export_bag
from cim.archive.ledger import day_root, seal
from cim.archive.review import archive_review, review_file
from cim.archive.service import Archive, VersionInfo
from cim.archive.verify import VerifyReport, verify

__all__ = [
    "Archive",
    "VerifyReport",
    "VersionInfo",
    "archive_review",
    "day_root",
    "diff_versions",
    "export_bag",
    "review_file",
    "seal",
    "verify",
]
