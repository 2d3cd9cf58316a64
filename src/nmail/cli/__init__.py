"""The `nmail` command line: one module per command group."""
