"""The workflows REST API (DESIGN §8): workflows, versions, runs, events, cancel."""
