from core import roles


def role_flags(request) -> dict:
    return {"is_curator": roles.is_curator(request.user), "is_admin": roles.is_admin(request.user)}
