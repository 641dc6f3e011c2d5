"""Package repositories: configuration, sync (all or nothing) and the in-memory
update index each server process builds from the last good metadata.

A sync downloads outside any transaction, then replaces the repository's
packages and notices in one transaction; a failed download or a corrupt
index changes nothing but the repository's `last_error`, so the last good
data stays in use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, InvalidInput, NotFound, RepositoryError
from patchwarden.repos import (
    Fetched,
    NoticePackage,
    RepoPackage,
    RepoSnapshot,
    UpdateNotice,
    Validators,
    fetch_apk,
    fetch_apt,
    fetch_rpm,
)
from patchwarden.repos.model import SCHEME_OF_KIND, RepoKind
from patchwarden.repos.updates import UpdateIndex
from patchwarden.services import audit, groups
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import (
    Asset,
    FeedState,
    Repository,
    RepositoryNotice,
    RepositoryPackage,
    utcnow,
)

KINDS: Final = ("apt", "rpm", "apk")
# The inventory ecosystem whose packages a kind of repository updates.
ECOSYSTEM_OF_KIND: Final[dict[str, str]] = {"apt": "deb", "rpm": "rpm", "apk": "apk"}
KIND_OF_ECOSYSTEM: Final[dict[str, str]] = {v: k for k, v in ECOSYSTEM_OF_KIND.items()}
# feed_state row whose generation moves whenever repository metadata changes
# (row 1 counts advisory feed changes).
REPOSITORY_STATE_ID: Final = 2
NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SUITE_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
WORD_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PLATFORM_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*(:[A-Za-z0-9._-]+)?$")
CHUNK: Final = 500
FETCH_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class RepositoryView:
    id: int
    name: str
    kind: str
    url: str
    suite: str | None
    components: list[str]
    architectures: list[str]
    platform: str | None
    group: str | None
    enabled: bool
    sync_interval_seconds: int
    classification: str
    package_count: int
    notice_count: int
    last_attempt_at: Any
    last_success_at: Any
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("last_attempt_at", "last_success_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass(frozen=True)
class SyncResult:
    name: str
    status: str  # updated | unchanged | failed
    packages: int = 0
    notices: int = 0
    error: str | None = None


RepositoryRef = int | str


def _view(session: Session, repo: Repository) -> RepositoryView:
    group = None if repo.group_id is None else groups.get(session, repo.group_id).name
    return RepositoryView(
        repo.id,
        repo.name,
        repo.kind,
        repo.url,
        repo.suite,
        list(repo.components),
        list(repo.architectures),
        repo.platform,
        group,
        repo.enabled,
        repo.sync_interval_seconds,
        repo.classification,
        repo.package_count,
        repo.notice_count,
        repo.last_attempt_at,
        repo.last_success_at,
        repo.last_error,
    )


def _load(session: Session, ref: RepositoryRef) -> Repository:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        repo = session.get(Repository, int(ref))
    else:
        repo = session.execute(
            select(Repository).where(Repository.name == ref)
        ).scalar_one_or_none()
    if repo is None:
        raise NotFound(f"repository {ref} not found")
    return repo


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidInput(f"invalid {what} {value!r}: expected {pattern.pattern}")
    return value


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file"):
        raise InvalidInput(f"repository URL must be http://, https:// or file://, not {url!r}")
    if parts.scheme != "file" and not parts.hostname:
        raise InvalidInput(f"repository URL {url!r} has no host")
    if any(c.isspace() for c in url) or len(url) > 2000:
        raise InvalidInput("repository URL must be at most 2000 characters without spaces")
    return url


def add_repository(
    session: Session,
    actor: str,
    *,
    name: str,
    kind: str,
    url: str,
    suite: str | None = None,
    components: Sequence[str] = (),
    architectures: Sequence[str] = (),
    platform: str | None = None,
    group: groups.GroupRef | None = None,
    sync_interval_seconds: int = 6 * 3600,
) -> RepositoryView:
    _check(NAME_RE, name, "repository name")
    if kind not in KINDS:
        raise InvalidInput(f"unknown repository type {kind!r}: expected one of {', '.join(KINDS)}")
    _check_url(url)
    if kind == "apt":
        if not suite:
            raise InvalidInput("an apt repository needs --suite (e.g. bookworm-security)")
        _check(SUITE_RE, suite, "suite")
        components = list(components) or ["main"]
        architectures = list(architectures) or ["amd64"]
    elif suite or components:
        raise InvalidInput(f"--suite and --component apply to apt repositories, not {kind}")
    for component in components:
        _check(WORD_RE, component, "component")
    for arch in architectures:
        _check(WORD_RE, arch, "architecture")
    if platform is not None:
        _check(PLATFORM_RE, platform, "platform (e.g. debian:12)")
        if len(platform) > 64:  # the column's width
            raise InvalidInput("a platform must be at most 64 characters")
    if not 60 <= sync_interval_seconds <= 30 * 86400:
        raise InvalidInput("sync interval must be between 60 seconds and 30 days")
    if session.execute(select(Repository.id).where(Repository.name == name)).first():
        raise Conflict(f"a repository named {name!r} exists")
    group_id = None if group is None else groups.get(session, group).id
    repo = Repository(
        name=name,
        kind=kind,
        url=url,
        suite=suite,
        components=list(components),
        architectures=list(architectures),
        platform=platform,
        group_id=group_id,
        sync_interval_seconds=sync_interval_seconds,
        created_by=actor,
    )
    session.add(repo)
    session.flush()
    view = _view(session, repo)
    audit.record(session, actor, "repository.add", "repository", str(repo.id), view.as_dict())
    return view


def list_repositories(session: Session) -> list[RepositoryView]:
    repos = session.execute(select(Repository).order_by(Repository.name)).scalars()
    return [_view(session, r) for r in repos]


def get_repository(session: Session, ref: RepositoryRef) -> RepositoryView:
    return _view(session, _load(session, ref))


def remove_repository(session: Session, actor: str, ref: RepositoryRef) -> None:
    repo = _load(session, ref)
    session.delete(repo)
    session.flush()
    bump_generation(session)
    mark_assets_dirty(session)
    audit.record(
        session, actor, "repository.remove", "repository", str(repo.id), {"name": repo.name}
    )


# --- sync ------------------------------------------------------------------------------


def sync(
    factory: sessionmaker[Session],
    actor: str,
    refs: Iterable[RepositoryRef] = (),
    *,
    force: bool = False,
    client: httpx.Client | None = None,
) -> list[SyncResult]:
    """Sync the named repositories (all enabled ones when none are named)."""
    with transaction(factory) as session:
        if refs:
            ids = [_load(session, ref).id for ref in refs]
        else:
            ids = list(
                session.execute(
                    select(Repository.id)
                    .where(Repository.enabled.is_(True))
                    .order_by(Repository.name)
                ).scalars()
            )
    own = client is None
    client = client or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True)
    try:
        return [_sync_one(factory, actor, repository_id, force, client) for repository_id in ids]
    finally:
        if own:
            client.close()


def sync_due(factory: sessionmaker[Session], actor: str = "system:scheduler") -> list[SyncResult]:
    """Sync every enabled repository whose interval has passed since its last attempt."""
    now = utcnow()
    with transaction(factory) as session:
        due = [
            repo.id
            for repo in session.execute(
                select(Repository).where(Repository.enabled.is_(True))
            ).scalars()
            if repo.last_attempt_at is None
            or repo.last_attempt_at + timedelta(seconds=repo.sync_interval_seconds) <= now
        ]
    return sync(factory, actor, due) if due else []


def _sync_one(
    factory: sessionmaker[Session],
    actor: str,
    repository_id: int,
    force: bool,
    client: httpx.Client,
) -> SyncResult:
    with transaction(factory) as session:
        repo = _load(session, repository_id)
        name, kind, url = repo.name, repo.kind, repo.url
        suite, components, arches = repo.suite, list(repo.components), list(repo.architectures)
        previous = (
            None
            if force or not repo.checksum
            else Validators(repo.etag, repo.last_modified, repo.checksum)
        )
        repo.last_attempt_at = utcnow()  # claimed: another process's scheduler skips it
    try:
        if kind == "apt":
            result = fetch_apt(
                url, suite or "", components, arches, client, previous=previous, name=name
            )
        elif kind == "rpm":
            result = fetch_rpm(url, client, previous=previous, name=name)
        else:
            result = fetch_apk(url, client, previous=previous, name=name)
    except RepositoryError as exc:
        with transaction(factory) as session:
            repo = _load(session, repository_id)
            repo.last_error = str(exc)
            audit.record(
                session,
                actor,
                "repository.sync_failed",
                "repository",
                str(repository_id),
                {"name": name, "error": str(exc)},
            )
        return SyncResult(name, "failed", error=str(exc))
    with transaction(factory) as session:
        repo = _load(session, repository_id)
        repo.last_error = None
        repo.last_success_at = utcnow()
        repo.etag, repo.last_modified = result.validators.etag, result.validators.last_modified
        if not isinstance(result, Fetched):
            return SyncResult(name, "unchanged", repo.package_count, repo.notice_count)
        snapshot = result.snapshot
        _replace_contents(session, repo, snapshot)
        repo.checksum = result.validators.checksum
        repo.classification = snapshot.classification_default
        repo.released_at = snapshot.released
        repo.package_count, repo.notice_count = len(snapshot.packages), len(snapshot.notices)
        bump_generation(session)
        mark_assets_dirty(session)
        audit.record(
            session,
            actor,
            "repository.sync",
            "repository",
            str(repository_id),
            {"name": name, "packages": repo.package_count, "notices": repo.notice_count},
        )
        return SyncResult(name, "updated", repo.package_count, repo.notice_count)


def _replace_contents(session: Session, repo: Repository, snapshot: RepoSnapshot) -> None:
    session.execute(delete(RepositoryPackage).where(RepositoryPackage.repository_id == repo.id))
    session.execute(delete(RepositoryNotice).where(RepositoryNotice.repository_id == repo.id))
    # De-duplicated: one index may list a version twice (several components).
    unique = {(p.name, p.version, p.arch): p for p in snapshot.packages}
    rows = [
        {
            "repository_id": repo.id,
            "name": p.name,
            "version": p.version,
            "arch": p.arch,
            "source": p.source,
            "build_time": p.build_time,
        }
        for p in unique.values()
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(RepositoryPackage), rows[start : start + 5000])
    notices = [
        {
            "repository_id": repo.id,
            "notice_id": n.id,
            "type": n.type,
            "severity": n.severity,
            "issued_at": n.issued,
            "title": n.title[:4000],
            "cve_ids": list(n.cve_ids),
            "packages": [list(p) for p in n.packages],
        }
        for n in {n.id: n for n in snapshot.notices}.values()
    ]
    for start in range(0, len(notices), 1000):
        session.execute(insert(RepositoryNotice), notices[start : start + 1000])


def bump_generation(session: Session) -> None:
    state = session.get(FeedState, REPOSITORY_STATE_ID)
    if state is None:
        session.add(FeedState(id=REPOSITORY_STATE_ID, generation=1, changed_at=utcnow()))
    else:
        state.generation += 1
        state.changed_at = utcnow()


def generation(session: Session) -> int:
    state = session.get(FeedState, REPOSITORY_STATE_ID)
    return state.generation if state else 0


def mark_assets_dirty(session: Session) -> None:
    """Repository contents changed: every asset's patches must be recomputed (one
    with no package a repository serves costs a lookup)."""
    session.execute(
        update(Asset).values(patches_dirty=True).execution_options(synchronize_session=False)
    )


# --- the update index of this process ----------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which repositories serve an asset: their kind, platform and group filters."""

    id: int
    name: str
    kind: str
    platform: str | None
    group_id: int | None


class UpdateIndexCache:
    """Per process: the repositories' scopes and one UpdateIndex per distinct set of
    repositories, rebuilt when the repository generation moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: tuple[str, int] = ("", -1)
        self._scopes: list[Scope] = []
        self._snapshots: dict[int, RepoSnapshot] = {}
        self._indexes: dict[tuple[int, ...], UpdateIndex] = {}

    def scopes(self, session: Session) -> list[Scope]:
        self._refresh(session)
        return self._scopes

    def index(self, session: Session, repository_ids: tuple[int, ...]) -> UpdateIndex:
        self._refresh(session)
        with self._lock:
            index = self._indexes.get(repository_ids)
            if index is None:
                snapshots = [self._snapshot(session, i) for i in repository_ids]
                kind: RepoKind = snapshots[0].kind
                index = UpdateIndex.build(snapshots, SCHEME_OF_KIND[kind])
                self._indexes[repository_ids] = index
            return index

    def _refresh(self, session: Session) -> None:
        # The database is part of the key: a process (tests, tools) may open several.
        current = (str(session.get_bind().engine.url), generation(session))
        with self._lock:
            if current == self._generation:
                return
            self._scopes = [
                Scope(r.id, r.name, r.kind, r.platform, r.group_id)
                for r in session.execute(
                    select(Repository).where(Repository.enabled.is_(True)).order_by(Repository.id)
                ).scalars()
                if r.last_success_at is not None
            ]
            self._snapshots.clear()
            self._indexes.clear()
            self._generation = current

    def _snapshot(self, session: Session, repository_id: int) -> RepoSnapshot:
        snapshot = self._snapshots.get(repository_id)
        if snapshot is None:
            snapshot = self._snapshots[repository_id] = load_snapshot(session, repository_id)
        return snapshot


def load_snapshot(session: Session, repository_id: int) -> RepoSnapshot:
    """The last good metadata of a repository, as the pure update index reads it."""
    repo = _load(session, repository_id)
    packages = tuple(
        RepoPackage(name, version, arch, source, "", 0, "", build_time)
        for name, version, arch, source, build_time in session.connection().execute(
            select(
                RepositoryPackage.name,
                RepositoryPackage.version,
                RepositoryPackage.arch,
                RepositoryPackage.source,
                RepositoryPackage.build_time,
            ).where(RepositoryPackage.repository_id == repository_id)
        )
    )
    notices = tuple(
        UpdateNotice(
            n.notice_id,
            n.type,  # type: ignore[arg-type]
            n.severity,
            n.issued_at,
            n.title,
            tuple(n.cve_ids),
            tuple(NoticePackage(*p) for p in n.packages),
        )
        for n in session.execute(
            select(RepositoryNotice).where(RepositoryNotice.repository_id == repository_id)
        ).scalars()
    )
    return RepoSnapshot(
        kind=repo.kind,  # type: ignore[arg-type]
        name=repo.name,
        packages=packages,
        notices=notices,
        classification_default=repo.classification,  # type: ignore[arg-type]
        released=repo.released_at,
        checksum=repo.checksum,
    )


INDEX_CACHE = UpdateIndexCache()
