"""Roles and what each may do. The console checks permissions, never role names."""

from __future__ import annotations

from enum import StrEnum


class Perm(StrEnum):
    VIEW = "view"  # dashboards, groups, members (masked), reports
    REVEAL = "reveal"  # open a masked phone number / unionid / real name (audited)
    TAG = "tag"  # create tags, tag and untag members
    EXPORT_MEMBERS = "export_members"  # member lists with personal data
    IMPORT = "import"  # upload events
    MANAGE_TEAM = "manage_team"  # invite, change roles, assign groups, deactivate
    AUDIT = "audit"  # read the audit log
    ERASE = "erase"  # erase a member's personal data (PIPL)


ROLE_PERMS: dict[str, frozenset[Perm]] = {
    "owner": frozenset(Perm),
    "admin": frozenset(Perm),
    # Operators work on their assigned groups only (scoping is applied by the services).
    "operator": frozenset({Perm.VIEW, Perm.REVEAL, Perm.TAG, Perm.EXPORT_MEMBERS}),
    # Analysts read numbers; personal data stays masked and member lists are not exported.
    "analyst": frozenset({Perm.VIEW}),
}
ROLES = tuple(ROLE_PERMS)
# Roles an admin may hand out; only an owner makes owners.
GRANTABLE: dict[str, tuple[str, ...]] = {
    "owner": ROLES,
    "admin": ("admin", "operator", "analyst"),
}


def may(role: str, perm: Perm) -> bool:
    return perm in ROLE_PERMS.get(role, frozenset())


def is_scoped(role: str) -> bool:
    """Roles that see only the groups assigned to them."""
    return role == "operator"
