"""The `fin3r` command-line tool: one module per subcommand, registered in `main.SUBCOMMANDS`."""
