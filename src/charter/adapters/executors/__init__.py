"""Pipeline executors: where a step's process runs (``local``: a child process of the server)."""
