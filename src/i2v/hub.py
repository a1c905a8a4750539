"""Hub ids ``org/name[@revision]``: parsing, huggingface_hub's errors as i2v's, file listings.

A hub id given as ``--model`` is resolved by ``registry.hub_model``, vetted before any weights are
fetched, in this order:

1. ``model_index.json`` alone: a pipeline class one of i2v's families runs, components from diffusers
   or transformers only (``check_model_index``);
2. the repository's file listing (from the Hub, or from the local cache when offline): no Python
   code, safetensors for every component (``check_file_listing``);
3. the JSON configs, from which the family reads the model's defaults as it does for a local folder.

The weights (safetensors only, the wanted variant) download when the model loads, with
huggingface_hub's progress bars. ``HF_HOME`` / ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE=1`` apply as in
any huggingface_hub tool: offline, everything comes from the cache or the model is refused.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from .errors import UnknownModelError

# "org/name" or "org/name@revision" (a branch, tag or commit); the Hub's own name rules
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(?:@(?P<revision>[\w./-]{1,255}))?$")
CONFIG_PATTERNS = ["model_index.json", "*/*.json"]  # every component's configs (small JSON), no weights


def parse_hub_id(text: str) -> tuple[str, str | None] | None:
    """``"org/name@rev"`` -> ("org/name", "rev"); ``"org/name"`` -> ("org/name", None); else None."""
    match = _HUB_ID.match(str(text))
    if match is None or ".." in match["repo"] or match["repo"].endswith((".", "-")):
        return None
    return match["repo"], match["revision"]


def is_hub_id(text: str) -> bool:
    return parse_hub_id(text) is not None


@contextmanager
def hub_errors(source: str):
    """huggingface_hub's failures -> ``UnknownModelError`` saying what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        yield
    except UnknownModelError:
        raise
    except GatedRepoError as exc:
        raise UnknownModelError(f"{source}: the repository is gated; accept its licence on the Hub and log in "
                                "(huggingface-cli login)") from exc
    except RepositoryNotFoundError as exc:
        raise UnknownModelError(f"{source}: no such repository on the Hub (or it is private)") from exc
    except RevisionNotFoundError as exc:
        raise UnknownModelError(f"{source}: no such revision in the repository") from exc
    except LocalEntryNotFoundError as exc:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        raise UnknownModelError(f"{source}: not in the local cache ({constants.HF_HUB_CACHE}) and {why}; "
                                "download it on a connected machine, or pass a local folder") from exc
    except (OSError, ValueError) as exc:  # HTTP errors, a broken cache, "cannot find the requested files"
        raise UnknownModelError(f"{source}: cannot get the model ({type(exc).__name__}: {exc})") from exc


def repo_files(repo: str, revision: str | None) -> list[str] | None:
    """The repository's files: the Hub's listing, or offline the cached snapshot's; None if neither."""
    from huggingface_hub import HfApi, constants, snapshot_download

    if not constants.HF_HUB_OFFLINE:
        try:
            return list(HfApi().list_repo_files(repo, revision=revision))
        except (OSError, ValueError):  # no network: fall back to the cache
            pass
    try:
        root = Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (OSError, ValueError):
        return None
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()]
