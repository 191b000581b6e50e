"""The dynamic purchasing system itself: arrangements, criteria, applications, assessment, memberships."""
