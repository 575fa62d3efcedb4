"""ebpm: the package manager's side of eunomia-bpf.

For now the project manifest ``ebpm.toml`` that ``ecli init`` writes and ``ecli build``
reads; the resolver, lock file and store grow here. Pure: nothing here touches the
kernel or the network.
"""

from __future__ import annotations

from .manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    Module,
    PackageInfo,
    parse_manifest,
    read_manifest,
)

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestError",
    "Module",
    "PackageInfo",
    "parse_manifest",
    "read_manifest",
]
