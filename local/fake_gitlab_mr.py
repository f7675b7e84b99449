"""The merge-request half of the fake GitLab (mixed into local/fake_gitlab.FakeGitLab), as GitLab answers it:

- `GET /users?username=` (an empty list for no one), `GET …/merge_requests/:iid` with `sha` (the source
  branch's head), `labels` (names), `author`, `reviewers`, `assignees`, `draft` and `head_pipeline`;
- `PUT …/merge_requests/:iid` taking `add_labels`, `remove_labels`, `labels` (comma-separated),
  `reviewer_ids`, `assignee_ids`, `title` and `description`;
- `POST …/merge_requests/:iid/notes`, at most 60 a minute (then 429 with Retry-After, as GitLab), written by the
  token's user (opsbot); `GET …/merge_requests/:iid/notes` and `GET …/merge_requests/:iid/notes/:note_id`, which
  finds only that merge request's notes and answers 404 `{"message": "404 Not found"}` for any other id;
- `GET …/merge_requests/:iid/diffs`, paginated with X-Next-Page/X-Total-Pages and Link;
- `GET …/merge_requests/:iid/versions`: the merge request's diff versions, newest first, each with its
  `head_commit_sha`, `base_commit_sha`, `start_commit_sha` and `created_at` (ms); a version is added when the merge
  request opens and whenever its source branch gets new commits, as GitLab's refresh of a merge request does;
- `PUT …/merge_requests/:iid/merge` with `sha`: 409 when the sha is not the head, 405 when the merge request
  is not open or is a draft, 406 on conflicts;
- `GET …/merge_requests?reviewer_username=` for review load.

`/_control/merge_request` opens one (commits on a new branch as its author) and answers with the Merge Request
Hook; `/_control/merge_request_hook` and `/_control/pipeline` give the hooks for later events; `/_control/note`
writes a note as a user (as that user would in GitLab's UI) and answers with the Note Hook GitLab sends for it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
import time
from datetime import UTC, datetime

USERS = [
    {"id": 2, "username": "opsbot", "name": "opsbot"},
    {"id": 7, "username": "alice", "name": "Alice Wang"},
    {"id": 11, "username": "bob", "name": "Bob Li"},
    {"id": 12, "username": "carol", "name": "Carol Zhang"},
    {"id": 13, "username": "dave", "name": "Dave Chen"},
    {"id": 14, "username": "erin", "name": "Erin Zhao"},
    {"id": 15, "username": "frank", "name": "Frank Sun"},
]
NOTES_PER_MINUTE = 60


_clock = {"last": 0}
_clock_lock = threading.Lock()


def _now_ms() -> str:
    """GitLab's timestamps: UTC, to the millisecond, and in the order things happened (one GitLab orders its
    events; two in the same millisecond would leave a note and a push with no order)."""
    with _clock_lock:
        now = max(int(time.time() * 1000), _clock["last"] + 1)
        _clock["last"] = now
    return datetime.fromtimestamp(now / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user(u: dict) -> dict:
    return {**u, "state": "active", "avatar_url": None, "web_url": f"http://gitlab.local/{u['username']}"}


class MergeRequestFake:
    """Needs from FakeGitLab: ApiError, `_repo`, `_resolve`, `_compare`, `_paged`, `_web`, `_hook_project`,
    `push`, `_say` and the `repos` it resets."""

    ApiError: type

    def reset_merge_requests(self) -> None:
        self.users = {u["username"]: _user(u) for u in USERS}
        self.note_times: list[float] = []
        self.notes: dict[tuple[str, int], list[dict]] = {}  # (project path, iid) -> its notes, oldest first
        self._note_ids = itertools.count(5001)  # note ids are unique across GitLab, as real ones are
        self.pipelines: dict[str, dict] = {}  # sha -> head_pipeline
        self.versions: dict[tuple[str, int], list[dict]] = {}  # (project path, iid) -> its versions, newest first
        self._version_ids = itertools.count(700)

    def add_version(self, repo, mr: dict) -> None:
        """A new diff version of an open merge request: its source branch's head now, pushed now."""
        head = repo.branches.get(mr["source_branch"])
        versions = self.versions.setdefault((repo.path, mr["iid"]), [])
        if mr["state"] != "opened" or head is None or (versions and versions[0]["head_commit_sha"] == head):
            return
        base = repo.branches.get(mr["target_branch"], head)
        versions.insert(
            0,
            {
                "id": next(self._version_ids),
                "head_commit_sha": head,
                "base_commit_sha": base,
                "start_commit_sha": base,
                "created_at": _now_ms(),
                "merge_request_id": mr["id"],
                "state": "collected",
                "real_size": str(len(repo.commits[head].files)),
                "patch_id_sha": hashlib.sha1(f"{base}..{head}".encode()).hexdigest(),
            },
        )

    def branch_moved(self, repo, branch: str) -> None:
        for mr in repo.merge_requests:
            if mr["source_branch"] == branch:
                self.add_version(repo, mr)

    def _user_by_id(self, user_id) -> dict:
        found = next((u for u in self.users.values() if u["id"] == int(user_id)), None)
        if found is None:
            raise self.ApiError(404, "404 User Not Found")
        return found

    def _users(self, args: dict) -> list[dict]:
        name = str(args.get("username") or "")
        return [copy.deepcopy(self.users[name])] if name in self.users else []

    def _mr(self, repo, iid: str) -> dict:
        found = next((mr for mr in repo.merge_requests if str(mr["iid"]) == str(iid)), None)
        if found is None:
            raise self.ApiError(404, "404 Not found")
        return found

    def mr_json(self, repo, mr: dict) -> dict:
        """What GET returns: the stored fields and the ones that follow the branches."""
        shown = copy.deepcopy(mr)
        if mr["state"] == "opened" and mr["source_branch"] in repo.branches:
            shown["sha"] = repo.branches[mr["source_branch"]]
        shown["head_pipeline"] = copy.deepcopy(self.pipelines.get(shown["sha"]))
        shown["draft"] = shown["work_in_progress"] = shown["title"].lower().startswith(("draft:", "[draft]"))
        shown["user_notes_count"] = len(self.notes.get((repo.path, mr["iid"]), []))
        return shown

    def _mr_route(self, repo, method: str, rest: list[str], args: dict, host: str, path: str):
        mr = self._mr(repo, rest[0])
        if method == "GET" and len(rest) == 1:
            return 200, self.mr_json(repo, mr), {}
        if method == "PUT" and len(rest) == 1:
            return 200, self._update(repo, mr, args), {}
        if rest[1:] == ["notes"] and method == "POST":
            return self._note(repo, mr, args)
        if rest[1:] == ["notes"] and method == "GET":
            return self._paged(copy.deepcopy(self.notes.get((repo.path, mr["iid"]), [])), args, host, path)
        if rest[1:2] == ["notes"] and len(rest) == 3 and method == "GET":
            return 200, self._find_note(repo, mr, rest[2]), {}
        if rest[1:] == ["diffs"] and method == "GET":
            head = self.mr_json(repo, mr)["sha"]
            diffs = self._compare(repo, {"from": repo.branches[mr["target_branch"]], "to": head})
            return self._paged(diffs["diffs"], args, host, path)
        if rest[1:] == ["versions"] and method == "GET":
            return self._paged(copy.deepcopy(self.versions.get((repo.path, mr["iid"]), [])), args, host, path)
        if rest[1:] == ["merge"] and method == "PUT":
            return 200, self._merge(repo, mr, args), {}
        raise self.ApiError(404, "404 Not Found")

    def _update(self, repo, mr: dict, args: dict) -> dict:
        def names(value) -> list[str]:
            items = value.split(",") if isinstance(value, str) else list(value or [])
            return [str(v).strip() for v in items if str(v).strip()]

        if "labels" in args:
            mr["labels"] = names(args["labels"])
        mr["labels"] = [label for label in mr["labels"] if label not in names(args.get("remove_labels"))]
        mr["labels"] += [label for label in names(args.get("add_labels")) if label not in mr["labels"]]
        for key, field in (("reviewer_ids", "reviewers"), ("assignee_ids", "assignees")):
            if key in args:
                mr[field] = [self._user_by_id(i) for i in dict.fromkeys(args[key] or [])]
        for field in ("title", "description"):
            if isinstance(args.get(field), str):
                mr[field] = args[field]
        mr["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._say(
            f"merge request {repo.path}!{mr['iid']}: labels {mr['labels']}, reviewers "
            f"{[u['username'] for u in mr['reviewers']]}"
        )
        return self.mr_json(repo, mr)

    def _note(self, repo, mr: dict, args: dict):
        now = time.time()
        self.note_times = [t for t in self.note_times if t > now - 60]
        if len(self.note_times) >= NOTES_PER_MINUTE:
            return (
                429,
                {"message": "This endpoint has been requested too many times. Try again later."},
                {"Retry-After": "60"},
            )
        if not str(args.get("body") or "").strip():
            raise self.ApiError(400, "body is missing")
        self.note_times.append(now)
        return 201, self.add_note(repo, mr, "opsbot", str(args["body"])), {}

    def add_note(self, repo, mr: dict, username: str, body: str, system: bool = False) -> dict:
        """A note as GitLab's notes API shows it, written by `username`."""
        now = _now_ms()
        note = {
            "id": next(self._note_ids),
            "type": None,
            "body": body,
            "attachment": None,
            "author": copy.deepcopy(self.users[username]),
            "created_at": now,
            "updated_at": now,
            "system": system,
            "noteable_id": mr["id"],
            "noteable_type": "MergeRequest",
            "project_id": repo.id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": mr["iid"],
        }
        self.notes.setdefault((repo.path, mr["iid"]), []).append(note)
        self._say(f"note {note['id']} by {username} on {repo.path}!{mr['iid']}: {body[:80]}")
        return copy.deepcopy(note)

    def _find_note(self, repo, mr: dict, note_id: str) -> dict:
        # GitLab looks a note up among the merge request's own notes: another one's id is a 404 too
        found = next((n for n in self.notes.get((repo.path, mr["iid"]), []) if str(n["id"]) == note_id), None)
        if found is None:
            raise self.ApiError(404, "404 Not found")
        return copy.deepcopy(found)

    def _merge(self, repo, mr: dict, args: dict) -> dict:
        shown = self.mr_json(repo, mr)
        if mr["state"] != "opened" or shown["draft"]:
            raise self.ApiError(405, "405 Method Not Allowed")
        if mr.get("has_conflicts"):
            raise self.ApiError(406, "Branch cannot be merged")
        if args.get("sha") and args["sha"] != shown["sha"]:
            raise self.ApiError(409, "SHA does not match HEAD of source branch: " + shown["sha"])
        merged = self._merge_commit(repo, mr, shown["sha"])
        mr.update(state="merged", sha=shown["sha"], merge_commit_sha=merged, squash=bool(args.get("squash")))
        self._say(f"merged {repo.path}!{mr['iid']} at {shown['sha'][:8]}")
        return self.mr_json(repo, mr)

    # --- control: open a merge request, and the hooks GitLab would send ----------------------------------
    def _merge_commit(self, repo, mr: dict, source_sha: str) -> str | None:
        """Fast-forward when the target did not move; otherwise a merge commit (406 when both sides changed a file)."""
        target_sha = repo.branches[mr["target_branch"]]
        source_line = {c.id for c in self._ancestors(repo, repo.commits[source_sha])}
        if target_sha in source_line:
            repo.branches[mr["target_branch"]] = source_sha
            return None
        target_line = self._ancestors(repo, repo.commits[target_sha])
        base = next((c for c in target_line if c.id in source_line), None)
        base_files = base.files if base else {}
        source, target = repo.commits[source_sha].files, repo.commits[target_sha].files
        files = dict(target)
        for name in set(base_files) | set(source) | set(target):
            ours, theirs, was = target.get(name), source.get(name), base_files.get(name)
            if theirs == was or theirs == ours:
                continue
            if ours != was:
                raise self.ApiError(406, "Branch cannot be merged")
            if theirs is None:
                files.pop(name, None)
            else:
                files[name] = theirs
        title = f"Merge branch '{mr['source_branch']}' into '{mr['target_branch']}'"
        return self._commit(
            repo,
            mr["target_branch"],
            target_sha,
            files,
            f"{title}\n\n{mr['title']}",
            "opsbot",
            "opsbot@example.com",
            source_sha,
        )

    def open_merge_request(self, spec: dict) -> dict:
        repo = self._repo(spec["project"])
        author = self.users[spec.get("author", "alice")]
        source, target = spec["source_branch"], spec.get("target_branch", repo.default_branch)
        repo.branches[source] = repo.branches[target]
        self.push(repo.path, source, spec["commits"], {**author, "email": f"{author['username']}@example.com"})
        first = not any(m["author"]["username"] == author["username"] for m in repo.merge_requests)
        created = self._create_merge_request(
            repo, {"source_branch": source, "target_branch": target, "title": spec.get("title", "change")}
        )
        mr = self._mr(repo, created["iid"])
        mr.update(author=copy.deepcopy(author), first_contribution=first)
        return self.merge_request_hook(repo, mr, "open", author)

    def merge_request_hook(self, repo, mr: dict, action: str, user: dict | None = None, oldrev: str = "") -> dict:
        shown = self.mr_json(repo, mr)
        attributes = {
            "id": shown["id"],
            "iid": shown["iid"],
            "action": action,
            "state": shown["state"],
            "title": shown["title"],
            "source_branch": shown["source_branch"],
            "target_branch": shown["target_branch"],
            "author_id": shown["author"]["id"],
            "first_contribution": shown.get("first_contribution", False),
            "url": shown["web_url"],
            "last_commit": {"id": shown["sha"]},
            "labels": [{"title": label} for label in shown["labels"]],
            "draft": shown["draft"],
            "work_in_progress": shown["draft"],
        }
        if oldrev:
            attributes["oldrev"] = oldrev
        return {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": user or shown["author"],
            "project": self._hook_project(repo),
            "object_attributes": attributes,
        }

    def pipeline_hook(self, spec: dict) -> dict:
        repo = self._repo(spec["project"])
        mr = self.mr_json(repo, self._mr(repo, spec["iid"]))
        pipeline = {
            "id": 900 + len(self.pipelines),
            "sha": mr["sha"],
            "ref": mr["source_branch"],
            "status": spec.get("status", "success"),
            "source": "external",
        }
        self.pipelines[mr["sha"]] = pipeline
        return {
            "object_kind": "pipeline",
            "object_attributes": {**pipeline, "detailed_status": pipeline["status"]},
            "merge_request": {k: mr[k] for k in ("id", "iid", "title", "source_branch", "target_branch", "state")},
            "project": self._hook_project(repo),
            "user": mr["author"],
        }

    def note_hook(self, repo, mr: dict, note: dict, action: str = "create") -> dict:
        """The Note Hook GitLab sends for a note on a merge request."""
        shown = self.mr_json(repo, mr)
        author = note["author"]
        attributes = {
            "id": note["id"],
            "note": note["body"],
            "noteable_type": "MergeRequest",
            "author_id": author["id"],
            "created_at": note["created_at"],
            "updated_at": note["updated_at"],
            "project_id": repo.id,
            "attachment": None,
            "line_code": None,
            "commit_id": "",
            "noteable_id": mr["id"],
            "system": note["system"],
            "st_diff": None,
            "action": action,
            "url": f"{shown['web_url']}#note_{note['id']}",
        }
        return {
            "object_kind": "note",
            "event_type": "note",
            "project_id": repo.id,
            "user": {k: author[k] for k in ("id", "name", "username", "avatar_url")},
            "project": self._hook_project(repo),
            "object_attributes": attributes,
            "merge_request": {
                "id": mr["id"],
                "iid": mr["iid"],
                "title": shown["title"],
                "state": shown["state"],
                "source_branch": shown["source_branch"],
                "target_branch": shown["target_branch"],
                "last_commit": {"id": shown["sha"]},
            },
        }

    def merge_request_control(self, method: str, path: str, args: dict, spec: dict):
        if method == "POST" and path == "/_control/merge_request":
            return 200, self.open_merge_request(spec)
        if method == "POST" and path == "/_control/merge_request_hook":
            repo = self._repo(spec["project"])
            return 200, self.merge_request_hook(
                repo,
                self._mr(repo, spec["iid"]),
                spec.get("action", "update"),
                self.users.get(spec.get("user", "")),
                spec.get("oldrev", ""),
            )
        if method == "POST" and path == "/_control/pipeline":
            return 200, self.pipeline_hook(spec)
        if method == "POST" and path == "/_control/note":
            repo = self._repo(spec["project"])
            mr = self._mr(repo, spec["iid"])
            if spec["author"] not in self.users:
                raise self.ApiError(404, "404 User Not Found")
            note = self.add_note(repo, mr, spec["author"], str(spec["body"]), bool(spec.get("system")))
            return 200, self.note_hook(repo, mr, note)
        if method == "GET" and path == "/_control/merge_request":
            repo = self._repo(args["project"])
            mr = self._mr(repo, args["iid"])
            return 200, {**self.mr_json(repo, mr), "notes": copy.deepcopy(self.notes.get((repo.path, mr["iid"]), []))}
        return None
