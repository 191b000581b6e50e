"""Users, organisations, memberships and roles, sign-in, two-factor authentication, API tokens."""
