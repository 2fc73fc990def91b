"""filmcolor test suite (a package, so helpers import as ``tests.media``)."""
