"""HTTP API (FastAPI) and CLI (typer): the user-facing edge of Porpoise."""
