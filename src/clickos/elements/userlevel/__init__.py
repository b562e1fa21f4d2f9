"""Elements that only make sense in a user-level process: control sockets and the like."""
