"""`bluegreen dashboard`: the operator's view in a browser (status, history, the switch plan,
operator approvals, live progress and traffic). An interface like cli.py: every number on its
pages comes from the service's calls, as the CLI's do."""
