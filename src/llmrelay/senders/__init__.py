"""HTTP senders: the only modules that import an HTTP library at run time."""
