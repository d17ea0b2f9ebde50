"""Stage 5: put rendered artifacts on disk atomically, or compare them with what is there."""

from deploytool.output.files import FileChange, check_files, write_files
from deploytool.output.manifest import read_manifest
from deploytool.output.secrets import SECRETS_FILE, ensure_secrets_file, read_secrets

__all__ = [
    "SECRETS_FILE",
    "FileChange",
    "check_files",
    "ensure_secrets_file",
    "read_manifest",
    "read_secrets",
    "write_files",
]
