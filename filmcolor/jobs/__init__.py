"""Resumable chunked jobs (:mod:`filmcolor.jobs.chunked`) and their manifest (#4)."""
