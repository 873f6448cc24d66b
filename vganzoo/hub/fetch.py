"""Fetching verified files: a weight set's files (bundled, local or from the Hub) and single pinned files.

Every file is accepted only if its sha256 matches; network access goes through
``huggingface_hub.hf_hub_download`` (cache, resume, locking). The endpoint is read at call time:
``endpoint=``, then ``VGANZOO_ENDPOINT``, then ``HF_ENDPOINT``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import sha256_file
from .errors import HashMismatchError, UnpinnedWeightsWarning, WeightsError, WeightsNotFoundError
from .weightsets import (
    COMMIT,
    HF_HUB_PREFIX,
    INDEX_FILE,
    LOCAL_DIR_PREFIX,
    REPO_ID,
    HubOptions,
    WeightSet,
    local_weight_set,
    parse_hf_name,
    parse_index,
    read_json,
    registry_weight_set,
    select_components,
    to_load_name,
)

__all__ = [
    "ENDPOINT_ENV_VARS",
    "Fetcher",
    "download",
    "fetch_file",
    "hub_unreachable",
    "recorded_metrics",
    "resolve",
    "resolve_endpoint",
]

ENDPOINT_ENV_VARS = ("VGANZOO_ENDPOINT", "HF_ENDPOINT")
# Before a download, a TCP connection to the Hub must open within this many seconds; without one the
# cache is used, or the load fails at once (instead of huggingface_hub's retries, ~24 s and more).
CONNECT_TIMEOUT_S = 3.0
REACHABILITY_TTL_S = 30.0
_REACHABILITY: dict[tuple[str, int], tuple[float, str | None]] = {}


def resolve_endpoint(endpoint: str | None = None) -> str | None:
    """The Hub endpoint for this call: ``endpoint``, else ``VGANZOO_ENDPOINT``, else ``HF_ENDPOINT``.

    None means huggingface_hub's default. Read at call time, so setting the variable after import works.
    """
    if endpoint is None:
        endpoint = next((os.environ[v] for v in ENDPOINT_ENV_VARS if os.environ.get(v)), None)
    if endpoint is None:
        return None
    if not isinstance(endpoint, str) or not re.match(r"^https?://", endpoint):
        raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    return endpoint.rstrip("/")


def is_offline(local_files_only: bool | None) -> bool:
    """Cache only? ``local_files_only`` if given, else ``HF_HUB_OFFLINE`` (read now, or at hub import)."""
    if local_files_only is not None:
        return bool(local_files_only)
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def default_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_unreachable(endpoint: str | None) -> str | None:
    """Why the Hub at ``endpoint`` cannot be reached (a TCP connection to it, or to the proxy that
    would carry the request, within :data:`CONNECT_TIMEOUT_S`), or None when it can. Answers are
    kept for :data:`REACHABILITY_TTL_S`, so loading several files checks once."""
    base = endpoint or default_endpoint()
    parts = urllib.parse.urlsplit(base)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or host, proxied.port or 8080
    key, now = (host, port), time.monotonic()
    cached = _REACHABILITY.get(key)
    if cached is not None and now - cached[0] < REACHABILITY_TTL_S:
        return cached[1]
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        reason = None
    except socket.gaierror:
        reason = f"the name {host!r} does not resolve (no network or DNS?)"
    except TimeoutError:
        reason = f"no answer from {host}:{port} within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        reason = f"{host}:{port}: {exc.strerror or exc}"
    _REACHABILITY[key] = (now, reason)
    return reason


def _remove_cached(pointer: Path) -> None:
    """Delete a cached file: the blob a snapshot entry points to, and the entry itself."""
    blob = Path(os.path.realpath(pointer))
    for path in {blob, pointer}:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@dataclass
class Fetcher:
    """Local paths of a weight set's files, each checked against its pinned sha256."""

    weights: WeightSet
    cache_dir: str | None
    offline: bool
    endpoint: str | None
    token: str | bool | None

    @classmethod
    def for_weights(cls, weights: WeightSet, options: HubOptions) -> Fetcher:
        return cls(
            weights,
            cache_dir=None if options.cache_dir is None else str(options.cache_dir),
            offline=is_offline(options.local_files_only),
            endpoint=resolve_endpoint(options.endpoint),
            token=options.token,
        )

    def url(self, filename: str) -> str:
        base = self.endpoint or default_endpoint()
        return f"{base}/{self.weights.repo_id}/resolve/{self.weights.revision or 'main'}/{filename}"

    def fetch(self, filename: str) -> Path:
        """A local path of ``filename`` whose sha256 matches the weight set."""
        w = self.weights
        expected = w.sha256[filename]
        if w.local_dir is not None:
            path = w.local_dir / filename
            if not path.is_file():
                raise WeightsNotFoundError(f"{w.name}: {filename} is missing from {w.local_dir}")
            actual = sha256_file(path)
            if actual != expected:
                raise HashMismatchError(filename, expected, actual, f"local folder {w.local_dir}")
            return path
        if w.bundled is not None:
            path = w.bundled / filename
            if path.is_file():
                actual = sha256_file(path)
                if actual == expected:
                    return path
                bundled_error = HashMismatchError(
                    filename,
                    expected,
                    actual,
                    f"bundled copy {path}",
                    "the installation is damaged; reinstall vganzoo",
                )
                if w.repo_id is None:
                    raise bundled_error
                warnings.warn(f"{bundled_error}; fetching it from the Hub instead", stacklevel=4)
            elif w.repo_id is None:
                raise WeightsNotFoundError(f"{w.name}: bundled file {path} is missing; reinstall vganzoo")
        return self._fetch_hub(filename, expected)

    def download(self, filename: str, *, force: bool = False) -> Path:
        """``filename`` of the weight set's repo through the Hugging Face cache (not verified here)."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            LocalEntryNotFoundError,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        w = self.weights
        where = f"{w.repo_id}@{w.revision or 'main'}"
        unreachable = None if self.offline else hub_unreachable(self.endpoint)
        try:
            return Path(
                hf_hub_download(
                    w.repo_id,
                    filename,
                    revision=w.revision,
                    cache_dir=self.cache_dir,
                    local_files_only=self.offline or unreachable is not None,
                    endpoint=self.endpoint,
                    token=self.token,
                    force_download=force,
                    library_name="vganzoo",
                )
            )
        except RepositoryNotFoundError as exc:  # includes gated repos
            raise WeightsNotFoundError(
                f"{w.name}: Hub repo {w.repo_id!r} not found at {self.endpoint or default_endpoint()} "
                "(wrong name, private or gated: log in with `hf auth login` or give a token)"
            ) from exc
        except RevisionNotFoundError as exc:
            raise WeightsNotFoundError(
                f"{w.name}: revision {w.revision!r} not found in Hub repo {w.repo_id!r}"
            ) from exc
        except RemoteEntryNotFoundError as exc:
            raise WeightsNotFoundError(f"{w.name}: {filename} not found in Hub repo {where}") from exc
        except LocalEntryNotFoundError as exc:
            raise WeightsNotFoundError(self._not_cached_message(filename, where, unreachable)) from exc
        except (OSError, ValueError) as exc:
            raise WeightsError(
                f"{w.name}: downloading {filename} from {self.url(filename)} failed: {exc}"
            ) from exc
        except Exception as exc:  # httpx transport errors after huggingface_hub's own retries
            raise WeightsError(
                f"{w.name}: downloading {filename} from {self.url(filename)} failed: {type(exc).__name__}: "
                f"{exc}"
            ) from exc

    def _not_cached_message(self, filename: str, where: str, unreachable: str | None = None) -> str:
        from huggingface_hub import constants

        fetch_elsewhere = (
            f"run `vganzoo download {self.weights.name}` on a machine with network access and copy its "
            "cache (see HF_HUB_CACHE)"
        )
        endpoint = self.endpoint or default_endpoint()
        if self.offline or constants.HF_HUB_OFFLINE:
            how = (
                "offline mode is on (HF_HUB_OFFLINE=1 or local_files_only=True)"
                if self.offline
                else "huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported)"
            )
            advice = f"turn offline mode off to download it, or {fetch_elsewhere}"
        else:
            how = f"the Hub at {endpoint} cannot be reached ({unreachable or 'the connection failed'})"
            advice = f"check the network connection and VGANZOO_ENDPOINT / HF_ENDPOINT, or {fetch_elsewhere}"
        return (
            f"{self.weights.name}: {filename} ({where}) is not in the local Hugging Face cache and {how}. "
            f"{advice[0].upper()}{advice[1:]}"
        )

    def _fetch_hub(self, filename: str, expected: str) -> Path:
        path = self.download(filename)
        actual = sha256_file(path)
        if actual == expected:
            return path
        _remove_cached(path)
        if self.offline:
            raise HashMismatchError(
                filename,
                expected,
                actual,
                f"Hugging Face cache {path}",
                f"the damaged cached copy was removed; run `vganzoo download {self.weights.name}` with "
                "network access",
            )
        # A damaged cache entry (or a bad transfer): removed above, fetched again once.
        path = self.download(filename, force=True)
        actual = sha256_file(path)
        if actual != expected:
            _remove_cached(path)
            raise HashMismatchError(
                filename,
                expected,
                actual,
                self.url(filename),
                "the file was fetched twice and removed from the cache",
            )
        return path


def _hf_weight_set(name: str, options: HubOptions) -> tuple[WeightSet, Fetcher]:
    """An ``hf-hub:`` weight set: its hashes come from the repo's own weights.json (not pinned)."""
    repo_id, rev = parse_hf_name(name[len(HF_HUB_PREFIX) :], options.revision)
    weights = WeightSet(name=name, files={}, sha256={}, repo_id=repo_id, revision=rev, pinned=False)
    fetcher = Fetcher.for_weights(weights, options)
    index_path = fetcher.download(INDEX_FILE)  # fetched without a pinned hash: what "not pinned" means
    commit = index_path.parent.name
    if COMMIT.match(commit) and commit != rev:  # the cache layout names the snapshot by its commit
        weights.revision = commit  # every other file from the same commit
    files, hashes, metadata, recipe = parse_index(
        read_json(index_path, name), f"{repo_id}@{weights.revision or 'main'}"
    )
    weights.files, weights.sha256, weights.metadata, weights.recipe = files, hashes, metadata, recipe
    pin = f"; pin it with 'hf-hub:{repo_id}@{weights.revision}'" if weights.revision != rev else ""
    warnings.warn(
        f"{name}: the sha256 hashes come from the repo's own {INDEX_FILE}, so these weights are not "
        f"pinned by a vganzoo spec (revision {weights.revision or rev or 'main'}){pin}",
        UnpinnedWeightsWarning,
        stacklevel=4,
    )
    return weights, fetcher


def resolve(name: str, options: HubOptions) -> tuple[WeightSet, Fetcher]:
    """The weight set ``name`` means and a fetcher for its files.

    Names: ``arch`` / ``arch.tag`` (a registered, pinned spec), ``hf-hub:org/repo[@revision]``,
    ``local-dir:/path`` or a plain folder path (see :func:`~vganzoo.hub.weightsets.to_load_name`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    name = to_load_name(name)
    if name.startswith(LOCAL_DIR_PREFIX):
        if options.revision is not None:
            raise ValueError("revision: not used with 'local-dir:' names")
        weights = local_weight_set(name, name[len(LOCAL_DIR_PREFIX) :])
    elif name.startswith(HF_HUB_PREFIX):
        return _hf_weight_set(name, options)
    else:
        weights = registry_weight_set(name, options.revision)
    fetcher = Fetcher.for_weights(weights, options)
    if weights.index_pinned:  # the recipe the weights were trained with, from the pinned weights.json
        weights.recipe = parse_index(read_json(fetcher.fetch(INDEX_FILE), name), weights.name)[3]
    return weights, fetcher


def download(
    name: str,
    *,
    components: str | Iterable[str] = "all",
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> dict[str, Path]:
    """Fetch and verify the files of weight set ``name`` (all components by default).

    Returns ``{"config": path, "<component>": path, ...}`` of files whose sha256 matched. This is
    what ``vganzoo download NAME`` runs to fill the cache for later offline use.
    """
    weights, fetcher = resolve(name, HubOptions(revision, cache_dir, local_files_only, endpoint, token))
    wanted = ["config", *select_components(weights, components)]
    return {comp: fetcher.fetch(weights.files[comp]) for comp in wanted}


def fetch_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    options: HubOptions | None = None,
) -> tuple[Path, str]:
    """One file of a Hub repo through the cache, verified: ``(local path, its sha256)``.

    With ``sha256`` the file must match it (a damaged cache entry is fetched again once). Without
    it the file is only as trustworthy as ``revision``: a 40-hex commit fixes the content; a branch
    or none warns (:class:`UnpinnedWeightsWarning`). The returned hash is what to record and pin.
    """
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    if not isinstance(filename, str) or not filename or filename.startswith(("/", ".")) or ".." in filename:
        raise ValueError(f"filename must be a file inside the repo, got {filename!r}")
    name = f"{HF_HUB_PREFIX}{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    weights = WeightSet(name=name, files={}, sha256={}, repo_id=repo_id, revision=revision, pinned=False)
    fetcher = Fetcher.for_weights(weights, options or HubOptions())
    if sha256 is not None:
        weights.sha256[filename] = sha256.lower()
        return fetcher.fetch(filename), sha256.lower()
    if revision is None or not COMMIT.match(revision):
        warnings.warn(
            f"{name}: neither a commit nor a sha256 pins this file; record the sha256 reported with "
            "the result, or give a 40-hex commit",
            UnpinnedWeightsWarning,
            stacklevel=2,
        )
    path = fetcher.download(filename)
    return path, sha256_file(path)


def recorded_metrics(name: str) -> dict[str, Any]:
    """The scores weight set ``name`` records: its spec's ``metrics`` metadata, then those of its
    pinned weights.json (the card's numbers), read only from files already on this machine (bundled,
    or in the cache): listing never downloads. ``{}`` when none are here.

    Each value is ``{"value": number, "protocol": text}`` keyed by metric (``"fvd_digits"``,
    ``"fvd_digits, real data"``, ...), as :func:`vganzoo.hub.save_pretrained` writes them.
    """
    metrics: dict[str, Any] = {}
    try:
        weights, fetcher = resolve(name, HubOptions(local_files_only=True))
    except (LookupError, OSError, ValueError, WeightsError):
        return metrics
    metrics.update(dict(weights.metadata.get("metrics") or {}))
    if weights.index_pinned:
        try:
            recorded = parse_index(read_json(fetcher.fetch(INDEX_FILE), name), weights.name)[2]
        except (LookupError, OSError, ValueError, WeightsError):
            return metrics
        metrics.update(dict(recorded.get("metrics") or {}))
    return metrics
