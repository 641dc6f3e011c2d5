"""User administration."""

from __future__ import annotations

from fastapi import APIRouter, status

from patchwarden.api.deps import DbDep, UsersManager, UsersReader
from patchwarden.api.schemas import UserCreateIn, UserOut, UserUpdateIn
from patchwarden.services import users

router = APIRouter(prefix="/users", tags=["users"])


def _out(view: users.UserView) -> UserOut:
    return UserOut(
        id=view.id,
        username=view.username,
        role=view.role,
        is_active=view.is_active,
        created_at=view.created_at,
    )


@router.get("", response_model=list[UserOut])
def list_users(_: UsersReader, database: DbDep) -> list[UserOut]:
    with database.transaction() as session:
        return [_out(u) for u in users.list_users(session)]


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreateIn, principal: UsersManager, database: DbDep) -> UserOut:
    with database.transaction() as session:
        view = users.create_user(session, principal.actor, body.username, body.password, body.role)
    return _out(view)


@router.patch("/{user_id}", response_model=UserOut)
def update_user(
    user_id: int, body: UserUpdateIn, principal: UsersManager, database: DbDep
) -> UserOut:
    with database.transaction() as session:
        view = users.update_user(
            session,
            principal.actor,
            user_id,
            role=body.role,
            is_active=body.is_active,
            password=body.password,
        )
    return _out(view)
