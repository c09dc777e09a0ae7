"""Domain services. Each takes an explicit session, builds select() queries and only flushes:
the caller (a route or a periodic job) owns the transaction."""
