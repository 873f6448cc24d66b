"""A small local server speaking the parts of the Hugging Face Hub protocol vganzoo uses.

Download side (what ``huggingface_hub.hf_hub_download`` needs):

* ``HEAD|GET /{org}/{name}/resolve/{revision}/{path}``: 200 with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length`` (``Range: bytes=a-`` gives 206); 404 with ``X-Error-Code`` ``RepoNotFound``,
  ``RevisionNotFound`` or ``EntryNotFound``.

Upload side (what ``HfApi.create_repo``, ``create_branch`` and ``upload_folder`` send when every file
is answered with the "regular" upload mode, i.e. the content travels inline in the commit):

* ``POST /api/repos/create``, ``POST /api/validate-yaml``,
  ``POST /api/models/{org}/{name}/preupload/{revision}``,
  ``POST /api/models/{org}/{name}/commit/{revision}`` (ndjson),
  ``POST /api/models/{org}/{name}/branch/{branch}``,
  ``POST /api/models/{org}/{name}/discussions`` and ``GET .../discussions/{num}`` (pull requests:
  each gets the ref ``refs/pr/{num}`` that commits then target),
  ``GET /api/models/{org}/{name}/revision/{revision}`` (repo info).

Every request is recorded in :attr:`FakeHub.requests` as ``(method, path)`` so tests can count them.
Faults for tests: :meth:`FakeHub.serve_instead` (other bytes than committed, e.g. a hash mismatch)
and :meth:`FakeHub.truncate` (send fewer bytes than ``Content-Length``, then close the connection).

Use the ``fake_hub`` pytest fixture (defined in the test module importing :class:`FakeHub`) or
``with FakeHub() as hub: ...``; ``hub.url`` is ``http://127.0.0.1:<random port>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub"]


def _commit_id(parent: str | None, files: dict[str, bytes], message: str) -> str:
    digest = hashlib.sha1()
    digest.update((parent or "").encode())
    digest.update(message.encode())
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


class _Repo:
    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.pull_requests: list[dict] = []

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """In-memory repos behind a threading HTTP server on 127.0.0.1 (random port)."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict] = []  # payloads of /api/repos/create
        self._replacements: dict[tuple[str, str], bytes] = {}
        self._truncations: dict[tuple[str, str], list[int | None]] = {}  # -> [bytes to send, times left]
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content ----------------------------------------------------------------------------
    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        message: str = "commit",
        replace: bool = False,
    ) -> str:
        """Add a commit on ``branch`` holding the parent's files updated with ``files``; returns its sha."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo())
            parent = repo.refs.get(branch)
            tree = {} if (parent is None or replace) else dict(repo.commits[parent])
            tree.update(files)
            sha = _commit_id(parent, tree, message)
            repo.commits[sha] = tree
            repo.refs[branch] = sha
            return sha

    def commit_folder(self, repo_id: str, folder: str | Path, **kwargs) -> str:
        folder = Path(folder)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
        }
        return self.commit(repo_id, files, **kwargs)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.resolve(revision)])

    # -- faults -----------------------------------------------------------------------------
    def serve_instead(self, repo_id: str, path: str, content: bytes) -> None:
        """Serve ``content`` for ``path`` at every revision (HEAD metadata included)."""
        self._replacements[(repo_id, path)] = content

    def truncate(self, repo_id: str, path: str, *, keep: int, times: int | None = None) -> None:
        """GETs of ``path`` send at most the first ``keep`` bytes of the file, then close.

        ``times`` limits how many GETs are cut (None: all of them, Range requests included).
        """
        self._truncations[(repo_id, path)] = [keep, times]

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        # -- helpers ----------------------------------------------------------------------
        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, head: bool = False
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            self._send(
                status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
            )

        def _error(
            self,
            status: int,
            code: str,
            message: str,
            *,
            head: bool = False,
            headers: dict[str, str] | None = None,
        ) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(
                status,
                body,
                {
                    "X-Error-Code": code,
                    "X-Error-Message": message,
                    "Content-Type": "application/json",
                    **(headers or {}),
                },
                head=head,
            )

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _record(self) -> tuple[list[str], dict[str, list[str]]]:
            split = urlsplit(self.path)
            hub.requests.append((self.command, split.path))
            return split.path.strip("/").split("/"), parse_qs(split.query)

        # -- download ---------------------------------------------------------------------
        def do_HEAD(self) -> None:
            self._resolve(head=True)

        def do_GET(self) -> None:
            parts, _query = self._record()
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                return self._repo_info(f"{parts[2]}/{parts[3]}", unquote(parts[5]))
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "discussions":
                return self._discussion(f"{parts[2]}/{parts[3]}", int(parts[5]))
            self._resolve(head=False, parts=parts)

        def _resolve(self, *, head: bool, parts: list[str] | None = None) -> None:
            if parts is None:
                parts, _query = self._record()
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "NotFound", f"no route for {self.path}", head=head)
            repo_id, revision, path = (
                f"{parts[0]}/{parts[1]}",
                unquote(parts[3]),
                unquote("/".join(parts[4:])),
            )
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", head=head)
            commit = repo.resolve(revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
            tree = repo.commits[commit]
            if path not in tree:
                return self._error(
                    404,
                    "EntryNotFound",
                    f"{path} does not exist at {revision}",
                    head=head,
                    headers={"X-Repo-Commit": commit},
                )
            content = hub._replacements.get((repo_id, path), tree[path])
            headers = {
                "X-Repo-Commit": commit,
                "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if head:
                return self._send(200, b"", {**headers, "Content-Length": str(len(content))}, head=True)
            start, status = 0, 200
            range_header = self.headers.get("Range")
            if range_header and range_header.startswith("bytes="):
                first, _, last = range_header[len("bytes=") :].partition("-")
                start = int(first or 0)
                end = int(last) + 1 if last else len(content)
                if start >= len(content) and len(content) > 0:
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
                content_slice, status = content[start:end], 206
            else:
                content_slice = content
            cut = hub._truncations.get((repo_id, path))
            if cut is not None and (cut[1] is None or cut[1] > 0):
                if cut[1] is not None:
                    cut[1] -= 1
                keep = max(0, int(cut[0]) - start)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content_slice)))
                self.end_headers()
                self.wfile.write(content_slice[:keep])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, content_slice, headers)

        def _repo_info(self, repo_id: str, revision: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            commit = repo.resolve(revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            siblings = [{"rfilename": p} for p in sorted(repo.commits[commit])]
            self._json(
                200,
                {"id": repo_id, "modelId": repo_id, "sha": commit, "siblings": siblings, "private": False},
            )

        def _discussion(self, repo_id: str, num: int) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None or not 1 <= num <= len(repo.pull_requests):
                return self._error(404, "NotFound", "Discussion not found")
            pr = repo.pull_requests[num - 1]
            self._json(
                200,
                {
                    "num": num,
                    "title": pr["title"],
                    "author": {"name": "tester"},
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "status": "draft",
                    "repo": {"name": repo_id, "type": "model"},
                    "isPullRequest": True,
                    "events": [],
                    "changes": {"base": "refs/heads/main"},
                    "filesWithConflicts": [],
                    "diff": "",
                },
            )

        # -- upload -----------------------------------------------------------------------
        def do_POST(self) -> None:
            parts, query = self._record()
            body = self._body()
            if parts == ["api", "repos", "create"]:
                payload = json.loads(body)
                hub.created.append(payload)
                repo_id = (
                    f"{payload.get('organization')}/{payload['name']}"
                    if payload.get("organization")
                    else payload["name"]
                )
                if repo_id in hub.repos:  # the Hub answers 409 with the repo url in the body
                    body409 = {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}
                    return self._json(409, body409, {"X-Error-Code": "RepoExists"})
                hub.repos[repo_id] = _Repo()
                return self._json(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
            if parts == ["api", "validate-yaml"]:
                return self._json(200, {"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], unquote("/".join(parts[5:]))
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(
                        200,
                        {
                            "files": [
                                {
                                    "path": f["path"],
                                    "uploadMode": "regular",
                                    "shouldIgnore": False,
                                    "oid": None,
                                }
                                for f in files
                            ]
                        },
                    )
                if action == "branch":
                    if revision in repo.refs:
                        return self._error(409, "BranchExists", "Reference already exists")
                    start = json.loads(body or b"{}").get("startingPoint") or "main"
                    base = repo.resolve(start)
                    if base is None and repo.commits:
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {start}")
                    if base is None:  # empty repo: an empty root commit to branch from
                        base = _commit_id(None, {}, "initial commit")
                        repo.commits[base] = {}
                        repo.refs.setdefault("main", base)
                    repo.refs[revision] = base
                    return self._json(200, {})
                if action == "commit":
                    return self._commit(repo_id, repo, revision, body, query)
            if parts[:2] == ["api", "models"] and len(parts) == 5 and parts[4] == "discussions":
                repo = hub.repos.get(f"{parts[2]}/{parts[3]}")
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                payload = json.loads(body)
                if not payload.get("pullRequest"):
                    return self._error(400, "BadRequest", "the test server only opens pull requests")
                num = len(repo.pull_requests) + 1
                base = repo.refs.get("main")
                if base is None:
                    base = _commit_id(None, {}, "initial commit")
                    repo.commits[base] = {}
                    repo.refs["main"] = base
                repo.refs[f"refs/pr/{num}"] = base
                repo.pull_requests.append({"num": num, "title": payload.get("title", "")})
                return self._json(
                    200, {"num": num, "url": f"{hub.url}/{parts[2]}/{parts[3]}/discussions/{num}"}
                )
            self._error(404, "NotFound", f"no route for POST {self.path}")

        def _commit(
            self, repo_id: str, repo: _Repo, revision: str, body: bytes, query: dict[str, list[str]]
        ) -> None:
            if query.get("create_pr"):
                return self._error(400, "BadRequest", "create_pr is not supported by the test server")
            if revision not in repo.refs and repo.refs:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            files: dict[str, bytes] = {}
            deleted: list[str] = []
            message = "commit"
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    message = value.get("summary") or message
                elif key == "file":
                    if value.get("encoding") != "base64":
                        return self._error(400, "BadRequest", "only base64 file content is supported")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    deleted.append(value["path"])
                else:
                    return self._error(
                        400,
                        "BadRequest",
                        f"unsupported commit operation {key!r} (the test server answers 'regular' for every "
                        "upload)",
                    )
            sha = hub.commit(repo_id, files, branch=revision, message=message)
            for path in deleted:
                repo.commits[sha].pop(path, None)
            self._json(
                200,
                {"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None},
            )

    return Handler
