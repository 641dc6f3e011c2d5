"""The `patchwarden` command line: server, admin and operator tasks."""
