"""Backend selection by URL (compatibility module: see :mod:`memvault.config` and :mod:`memvault.registry`)."""

from memvault.config import default_url, file_path, mask_url, memvault_home, query_options
from memvault.registry import BACKENDS, CLIENTS, open_store, register_backend, scheme_of

__all__ = [
    "BACKENDS",
    "CLIENTS",
    "default_url",
    "file_path",
    "mask_url",
    "memvault_home",
    "open_store",
    "query_options",
    "register_backend",
    "scheme_of",
]
