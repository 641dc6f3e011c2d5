"""Roles and what each may do. Every API endpoint declares one permission;
this table is the single place that says which roles hold it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    VIEWER = "viewer"


class Permission(StrEnum):
    INVENTORY_READ = "inventory:read"  # assets, packages, groups, agents
    INVENTORY_WRITE = "inventory:write"  # asset attributes, groups, imports, agentless targets
    AGENTS_MANAGE = "agents:manage"  # enrolment tokens, revoking agents
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"
    FEEDS_MANAGE = "feeds:manage"  # import and sync advisory feeds
    POLICY_MANAGE = "policy:manage"  # risk weights, SLA policies, four-eyes
    REPOS_MANAGE = "repos:manage"  # package repositories: add, remove, sync
    APPROVALS_REQUEST = "approvals:request"  # ask for a patch to be approved
    # Rollouts: create, start, pause, resume, abort, roll back; maintenance windows.
    ROLLOUTS_MANAGE = "rollouts:manage"
    # Approve, decline, lift, revoke; auto-approval rules; exceptions (risk acceptance).
    APPROVALS_DECIDE = "approvals:decide"
    SELF = "self"  # own profile and own API tokens


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.INVENTORY_READ,
            Permission.INVENTORY_WRITE,
            Permission.AGENTS_MANAGE,
            Permission.FEEDS_MANAGE,
            Permission.REPOS_MANAGE,
            Permission.APPROVALS_REQUEST,
            Permission.ROLLOUTS_MANAGE,
            Permission.SELF,
        }
    ),
    Role.APPROVER: frozenset(
        {
            Permission.INVENTORY_READ,
            Permission.APPROVALS_REQUEST,
            Permission.APPROVALS_DECIDE,
            Permission.SELF,
        }
    ),
    # Auditors read everything, including who did what, and change nothing.
    Role.AUDITOR: frozenset(
        {Permission.INVENTORY_READ, Permission.USERS_READ, Permission.AUDIT_READ, Permission.SELF}
    ),
    Role.VIEWER: frozenset({Permission.INVENTORY_READ, Permission.SELF}),
}


def role_has(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
