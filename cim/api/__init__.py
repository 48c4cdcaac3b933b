"""The HTTP service (FastAPI): tiles, OGC API – Features, detail endpoints, jobs, analyses."""
