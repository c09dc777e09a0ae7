"""HTTP routes under /v1 and the server-rendered pages."""
