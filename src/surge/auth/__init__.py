"""Users, roles, password hashing, access tokens and the checks every route makes."""
